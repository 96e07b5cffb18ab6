from tortoise import migrations
from tortoise.migrations import operations as ops
from hub.models.audit import AuditMode
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Two helpers for the audit's SQL (hub/ledger/audit/fingerprints.py); SQLite gets its own versions from
# the audit's connection.
# - hub_sum: PostgreSQL's SUM(bigint) adds in numeric, several times slower than integer addition over
#   millions of rows. Overflow raises an error, it never wraps (as SQLite's SUM).
# - hub_hash: a keyed hash of all 64 bits of a bigint. hashint8extended alone folds the high half into
#   the low one, so values like b and 2^32 + (b XOR 1) would collide whatever the key. An SQL function
#   of one expression, which the planner inlines.
AUDIT_SQL = """
CREATE AGGREGATE hub_sum(bigint) (SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE);
CREATE FUNCTION hub_hash(value bigint, seed bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashint8extended(value >> 32, hashint8extended(value & 4294967295, seed)) $$;
"""
DROP_AUDIT_SQL = "DROP FUNCTION hub_hash(bigint, bigint); DROP AGGREGATE hub_sum(bigint);"


async def add_audit_sql(apps, state_editor) -> None:
    if state_editor.client.capabilities.dialect == "postgres":
        await state_editor.client.execute_script(AUDIT_SQL)


async def drop_audit_sql(apps, state_editor) -> None:
    if state_editor.client.capabilities.dialect == "postgres":
        await state_editor.client.execute_script(DROP_AUDIT_SQL)


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
        ops.RunPython(add_audit_sql, reverse_code=drop_audit_sql),
    ]
