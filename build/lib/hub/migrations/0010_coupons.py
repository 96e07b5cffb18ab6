from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import CouponKind
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_engagement')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CouponTemplate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='coupon_templates', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharEnumField(description='hub.domain.CouponKind', enum_type=CouponKind, max_length=16)),
                ('amount_off_fen', fields.BigIntField(default=0)),
                ('min_bill_fen', fields.BigIntField(default=0)),
                ('percent_off_bp', fields.IntField(default=0)),
                ('max_off_fen', fields.BigIntField(null=True)),
                ('free_item_sku', fields.CharField(default='', max_length=64)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_days', fields.IntField(null=True)),
                ('store_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('points_price', fields.BigIntField(null=True)),
                ('quantity', fields.BigIntField(null=True)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'coupon_template', 'app': 'models', 'unique_together': (('brand', 'code'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
