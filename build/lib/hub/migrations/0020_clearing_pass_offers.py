from tortoise import migrations
from tortoise.migrations import operations as ops
from hub.domain import ClearingFunding
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0019_partnerships')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ClearingEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand_id', fields.BigIntField()),
                ('redemption_id', fields.BigIntField()),
                ('clearing_id', fields.BigIntField()),
                ('issuer_store_id', fields.BigIntField()),
                ('redeemer_store_id', fields.BigIntField()),
                ('points', fields.BigIntField()),
                ('fen', fields.BigIntField()),
                ('issuer_fen', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'clearing_entry', 'app': 'models', 'unique_together': (('redemption_id', 'issuer_store_id'),), 'indexes': [Index(fields=['brand_id', 'issuer_store_id']), Index(fields=['brand_id', 'redeemer_store_id'])], 'pk_attr': 'id', 'table_description': "Points one store issued and another accepted in one redemption, at the brand's point value."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ClearingPolicy',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.OneToOneField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='clearing_policy', on_delete=OnDelete.RESTRICT)),
                ('funding', fields.CharEnumField(description='hub.domain.ClearingFunding', enum_type=ClearingFunding, max_length=16)),
                ('issuer_share_bp', fields.IntField(default=10000)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'clearing_policy', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='PartnerOffer',
            name='pass_product_id',
            field=fields.BigIntField(null=True),
        ),
    ]
