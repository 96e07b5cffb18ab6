from tortoise import migrations
from tortoise.migrations import operations as ops
from hub.models.ledger import AccountKind, Asset, TransactionKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Indexes the ORM cannot declare: partial indexes, read by the engine and the relay in their own order.
PARTIAL_INDEXES = [
    # Open lots in spending order (soonest expiry first, never-expiring last, then oldest).
    "CREATE INDEX lot_open_idx ON lot (account_id, expires_at, id) WHERE remaining > 0",
    # What the relay may have to recover: only unpublished rows, so the scan does not grow with the outbox.
    "CREATE INDEX outbox_event_unpublished_idx ON outbox_event (id) WHERE published_at IS NULL",
]
DROP_PARTIAL_INDEXES = ["DROP INDEX lot_open_idx", "DROP INDEX outbox_event_unpublished_idx"]

# PostgreSQL enforces what it can of the ledger's invariants itself, so that code that bypasses the
# engine cannot break them (docs/ledger.md, "Guards in the database").
PG_GUARDS = """
ALTER TABLE account ADD CONSTRAINT account_no_overdraft CHECK (allow_negative OR balance >= 0);

CREATE FUNCTION ledger_postings_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT p.transaction_id, a.brand_id, a.asset, a.asset_code, SUM(p.amount) AS total INTO bad
    FROM new_postings p JOIN account a ON a.id = p.account_id
    GROUP BY p.transaction_id, a.brand_id, a.asset, a.asset_code
    HAVING SUM(p.amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance for brand % %/%: sum %',
            bad.transaction_id, bad.brand_id, bad.asset, bad.asset_code, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER posting_balances AFTER INSERT ON posting
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balance();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER posting_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON posting
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
"""

DROP_PG_GUARDS = """
DROP TRIGGER ledger_transaction_append_only ON ledger_transaction;
DROP TRIGGER posting_append_only ON posting;
DROP FUNCTION ledger_append_only();
DROP TRIGGER posting_balances ON posting;
DROP FUNCTION ledger_postings_balance();
ALTER TABLE account DROP CONSTRAINT account_no_overdraft;
"""


class AlterColumnInPlace(ops.AlterField):
    """An AlterField that SQLite runs as the given statements instead of Tortoise's table rebuild.

    For any AlterField Tortoise 1.1 rebuilds an SQLite table, and the rebuilt table loses its
    multi-column unique constraints and one-to-one uniques (here: the idempotency key, the one reversal
    per transaction, one outbox row per posting). These changes are a column comment or an index,
    which SQLite can do in place (or has nothing to do: it keeps no comments).
    """

    def __init__(self, *args, sqlite_sql: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sqlite_sql = sqlite_sql

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "sqlite":
            for sql in self.sqlite_sql:
                await state_editor._run_sql(sql)
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


async def _pg_only(sql: str, state_editor) -> None:
    if state_editor.client.capabilities.dialect == "postgres":
        await state_editor.client.execute_script(sql)


async def add_pg_guards(apps, state_editor) -> None:
    await _pg_only(PG_GUARDS, state_editor)


async def drop_pg_guards(apps, state_editor) -> None:
    await _pg_only(DROP_PG_GUARDS, state_editor)


class Migration(migrations.Migration):
    dependencies = [('models', '0002_jobs')]

    initial = False

    operations = [
        AlterColumnInPlace(
            model_name='Account',
            name='asset',
            field=fields.CharEnumField(description='hub.models.ledger.Asset', enum_type=Asset, max_length=16),
        ),
        AlterColumnInPlace(
            model_name='Account',
            name='kind',
            field=fields.CharEnumField(description='hub.models.ledger.AccountKind', enum_type=AccountKind, max_length=16),
        ),
        ops.AddField(
            model_name='Account',
            name='partnership_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Account',
            name='store',
            field=fields.ForeignKeyField('models.Store', source_field='store_id', null=True, db_constraint=True, to_field='id', related_name='accounts', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddIndex(
            model_name='Account',
            index=Index(fields=['membership_id']),
        ),
        ops.AddIndex(
            model_name='Account',
            index=Index(fields=['store_id']),
        ),
        ops.AddIndex(
            model_name='Account',
            index=Index(fields=['partnership_id']),
        ),
        AlterColumnInPlace(
            model_name='LedgerTransaction',
            name='kind',
            field=fields.CharEnumField(description='hub.models.ledger.TransactionKind', enum_type=TransactionKind, max_length=24),
        ),
        ops.AddField(
            model_name='LedgerTransaction',
            name='actor_key_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddIndex(
            model_name='LedgerTransaction',
            index=Index(fields=['membership_id']),
        ),
        ops.RemoveIndex(
            model_name='Lot',
            name=None,
            fields=['account_id', 'remaining'],
        ),
        ops.AlterModelOptions(
            name='Lot',
            options={'table': 'lot', 'app': 'models', 'indexes': [Index(fields=['transaction_id'])], 'pk_attr': 'id', 'table_description': 'A batch of value credited to an account whose asset keeps lots, spent soonest expiry first.'},
        ),
        ops.AddIndex(
            model_name='Lot',
            index=Index(fields=['transaction_id']),
        ),
        ops.AddIndex(
            model_name='LotAllocation',
            index=Index(fields=['transaction_id']),
        ),
        ops.AddIndex(
            model_name='LotAllocation',
            index=Index(fields=['lot_id']),
        ),
        ops.AlterModelOptions(
            name='OutboxEvent',
            options={'table': 'outbox_event', 'app': 'models', 'unique_together': (('account', 'sequence'),), 'pk_attr': 'id', 'table_description': 'A balance event written with its postings: the durable record of what subscribers are owed.'},
        ),
        AlterColumnInPlace(
            model_name='OutboxEvent',
            name='published_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
            sqlite_sql=('DROP INDEX "idx_outbox_even_publish_917362"',),
        ),
        ops.AddIndex(
            model_name='Posting',
            index=Index(fields=['transaction_id']),
        ),
        ops.RunSQL(PARTIAL_INDEXES, reverse_sql=DROP_PARTIAL_INDEXES),
        ops.RunPython(add_pg_guards, reverse_code=drop_pg_guards),
    ]
