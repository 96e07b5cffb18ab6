from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import ClawbackPolicy
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_records')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SpendingRules',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.OneToOneField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='spending_rules', on_delete=OnDelete.RESTRICT)),
                ('points_min_bill_fen', fields.BigIntField(default=0)),
                ('points_max_share_bp', fields.IntField(default=10000)),
                ('points_step_fen', fields.IntField(default=100)),
                ('excluded_categories', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('top_up_tiers', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('refund_clawback', fields.CharEnumField(default=ClawbackPolicy.WITHIN_BALANCE, description='hub.domain.ClawbackPolicy', enum_type=ClawbackPolicy, max_length=24)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'spending_rules', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
