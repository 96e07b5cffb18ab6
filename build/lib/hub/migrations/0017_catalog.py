from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import GiftOrderStatus, LimitPeriod
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_checkout')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GiftItem',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='gift_items', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('image_url', fields.CharField(default='', max_length=500)),
                ('points_price', fields.BigIntField()),
                ('cash_fen', fields.BigIntField(default=0)),
                ('stock', fields.BigIntField(null=True)),
                ('limit_per_member', fields.IntField(null=True)),
                ('limit_period', fields.CharEnumField(default=LimitPeriod.TOTAL, description='hub.domain.LimitPeriod', enum_type=LimitPeriod, max_length=8)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('store_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'gift_item', 'app': 'models', 'unique_together': (('brand', 'code'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GiftOrder',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='gift_orders', on_delete=OnDelete.RESTRICT)),
                ('item', fields.ForeignKeyField('models.GiftItem', source_field='item_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='gift_orders', on_delete=OnDelete.RESTRICT)),
                ('store', fields.ForeignKeyField('models.Store', source_field='store_id', db_constraint=True, to_field='id', related_name='gift_orders', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(default=GiftOrderStatus.PLACED, description='hub.domain.GiftOrderStatus', enum_type=GiftOrderStatus, max_length=12)),
                ('points', fields.BigIntField()),
                ('cash_fen', fields.BigIntField(default=0)),
                ('stock_key', fields.CharField(max_length=160)),
                ('limit_key', fields.CharField(default='', max_length=160)),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='gift_order', on_delete=OnDelete.RESTRICT)),
                ('cancel_transaction', fields.OneToOneField('models.LedgerTransaction', source_field='cancel_transaction_id', null=True, db_constraint=True, to_field='id', related_name='gift_order_cancelled', on_delete=OnDelete.RESTRICT)),
                ('fulfilled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancel_reason', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'gift_order', 'app': 'models', 'indexes': [Index(fields=['brand_id', 'store_id', 'status'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
