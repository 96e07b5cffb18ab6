from tortoise import migrations
from tortoise.migrations import operations as ops
from hub.domain import PrizeKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0020_clearing_pass_offers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Lottery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='lotteries', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('cost_points', fields.BigIntField()),
                ('plays_per_day', fields.IntField(null=True)),
                ('budget_points', fields.BigIntField(null=True)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'lottery', 'app': 'models', 'unique_together': (('brand', 'code'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LotteryPrize',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('lottery', fields.ForeignKeyField('models.Lottery', source_field='lottery_id', db_constraint=True, to_field='id', related_name='prizes', on_delete=OnDelete.RESTRICT)),
                ('position', fields.IntField()),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharEnumField(description='hub.domain.PrizeKind', enum_type=PrizeKind, max_length=8)),
                ('weight', fields.IntField()),
                ('quantity', fields.BigIntField(null=True)),
                ('points', fields.BigIntField(default=0)),
                ('coupon_template', fields.ForeignKeyField('models.CouponTemplate', source_field='coupon_template_id', null=True, db_constraint=True, to_field='id', related_name='lottery_prizes', on_delete=OnDelete.RESTRICT)),
                ('gift_item', fields.ForeignKeyField('models.GiftItem', source_field='gift_item_id', null=True, db_constraint=True, to_field='id', related_name='lottery_prizes', on_delete=OnDelete.RESTRICT)),
                ('value_points', fields.BigIntField(default=0)),
            ],
            options={'table': 'lottery_prize', 'app': 'models', 'unique_together': (('lottery', 'position'),), 'pk_attr': 'id', 'table_description': "One prize of a lottery: drawn with probability weight / (sum of the lottery's weights)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LotteryPlay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='lottery_plays', on_delete=OnDelete.RESTRICT)),
                ('lottery', fields.ForeignKeyField('models.Lottery', source_field='lottery_id', db_constraint=True, to_field='id', related_name='plays', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='lottery_plays', on_delete=OnDelete.RESTRICT)),
                ('prize', fields.ForeignKeyField('models.LotteryPrize', source_field='prize_id', null=True, db_constraint=True, to_field='id', related_name='plays', on_delete=OnDelete.RESTRICT)),
                ('drawn_prize', fields.ForeignKeyField('models.LotteryPrize', source_field='drawn_prize_id', null=True, db_constraint=True, to_field='id', related_name='drawn_plays', on_delete=OnDelete.RESTRICT)),
                ('cost_points', fields.BigIntField()),
                ('points_won', fields.BigIntField(default=0)),
                ('value_points', fields.BigIntField(default=0)),
                ('limit_key', fields.CharField(default='', max_length=160)),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='lottery_play', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'lottery_play', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One play and its outcome.'},
            bases=['Model'],
        ),
    ]
