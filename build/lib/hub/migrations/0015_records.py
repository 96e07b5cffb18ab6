from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import Role
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0014_reports')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChangeRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', null=True, db_constraint=True, to_field='id', related_name='change_records', on_delete=OnDelete.RESTRICT)),
                ('actor_role', fields.CharEnumField(description='PLATFORM: platform\nBRAND: brand\nSTORE: store\nMEMBER: member', enum_type=Role, max_length=16)),
                ('actor_key_id', fields.BigIntField(null=True)),
                ('action', fields.CharField(max_length=64)),
                ('subject_type', fields.CharField(max_length=32)),
                ('subject_id', fields.BigIntField(null=True)),
                ('before', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('after', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'change_record', 'app': 'models', 'indexes': [Index(fields=['brand_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One configuration change or manual adjustment: who, when, what, and the values before and after.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CreationClaim',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=64)),
                ('key', fields.CharField(max_length=100)),
                ('operation', fields.CharField(max_length=64)),
                ('request_hash', fields.CharField(max_length=64)),
                ('result_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'creation_claim', 'app': 'models', 'unique_together': (('scope', 'key'),), 'pk_attr': 'id', 'table_description': 'An idempotency key of a creating mutation (createBrand, createApiKey, ...) and what it created.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Membership',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
