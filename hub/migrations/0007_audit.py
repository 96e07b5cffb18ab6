from tortoise import migrations
from tortoise.migrations import operations as ops
from hub.models.audit import AuditMode
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# PostgreSQL's SUM(bigint) adds in numeric, several times slower than integer addition over millions of
# rows; the audit sums with this one instead. Overflow raises an error, it never wraps. SQLite's SUM is
# already an integer sum that raises on overflow.
HUB_SUM = (
    "CREATE AGGREGATE hub_sum(bigint) (SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE)"
)


async def add_hub_sum(apps, state_editor) -> None:
    if state_editor.client.capabilities.dialect == "postgres":
        await state_editor.client.execute_script(HUB_SUM)


async def drop_hub_sum(apps, state_editor) -> None:
    if state_editor.client.capabilities.dialect == "postgres":
        await state_editor.client.execute_script("DROP AGGREGATE hub_sum(bigint)")


class Migration(migrations.Migration):
    dependencies = [('models', '0006_brand_settings')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=32)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', null=True, db_constraint=True, to_field='id', related_name='audit_checkpoints', on_delete=OnDelete.RESTRICT)),
                ('mode', fields.CharEnumField(description='FULL: full\nINCREMENTAL: incremental', enum_type=AuditMode, max_length=16)),
                ('extends', fields.ForeignKeyField('models.AuditCheckpoint', source_field='extends_id', null=True, db_constraint=True, to_field='id', related_name='extended_by', on_delete=OnDelete.RESTRICT)),
                ('posting_horizon', fields.BigIntField()),
                ('transaction_horizon', fields.BigIntField()),
                ('lot_horizon', fields.BigIntField()),
                ('allocation_horizon', fields.BigIntField()),
                ('outbox_horizon', fields.BigIntField()),
                ('accounts', fields.BigIntField()),
                ('transactions', fields.BigIntField()),
                ('postings', fields.BigIntField()),
                ('segment_hash', fields.CharField(max_length=64)),
                ('chain_hash', fields.CharField(max_length=64)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_checkpoint', 'app': 'models', 'indexes': [Index(fields=['scope', 'id'])], 'pk_attr': 'id', 'table_description': 'One clean audit of a scope (the platform, or one brand) up to its horizons.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditAccountState',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=32)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=False, to_field='id', related_name='audit_states', on_delete=OnDelete.RESTRICT)),
                ('balance', fields.BigIntField()),
                ('sequence', fields.BigIntField()),
                ('checkpoint', fields.ForeignKeyField('models.AuditCheckpoint', source_field='checkpoint_id', db_constraint=False, to_field='id', related_name='states', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'audit_account_state', 'app': 'models', 'unique_together': (('scope', 'account'),), 'pk_attr': 'id', 'table_description': "An account's balance and sequence as the latest checkpoint of a scope proved them."},
            bases=['Model'],
        ),
        ops.RunPython(add_hub_sum, reverse_code=drop_hub_sum),
    ]
