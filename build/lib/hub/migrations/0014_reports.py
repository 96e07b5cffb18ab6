from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# The ledger written before this migration becomes report deltas, one row per group of each batch
# (the transactions of a batch share their created_at), as the engine writes them from now on; the
# worker's rollup job folds them into days (docs/reports.md).
_COLUMNS = "brand_id, store_id, kind, asset, asset_code, account_kind, credit, debit, count, purchases, sales_fen, at"
BACKFILL_POSTINGS = f"""
INSERT INTO report_delta ({_COLUMNS})
SELECT a.brand_id, COALESCE(t.store_id, 0), t.kind, a.asset, a.asset_code, a.kind,
       SUM(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END),
       SUM(CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END), COUNT(*), 0, 0, t.created_at
FROM posting p JOIN account a ON a.id = p.account_id JOIN ledger_transaction t ON t.id = p.transaction_id
GROUP BY a.brand_id, COALESCE(t.store_id, 0), t.kind, a.asset, a.asset_code, a.kind, t.created_at
"""
_PURCHASE = {
    "postgres": "(t.details ? 'purchasedAt' AND jsonb_typeof(t.details->'amountFen') = 'number')",
    "sqlite": "(json_extract(t.details, '$.purchasedAt') IS NOT NULL"
    " AND json_type(t.details, '$.amountFen') = 'integer')",
}
_AMOUNT = {"postgres": "(t.details->>'amountFen')::bigint", "sqlite": "json_extract(t.details, '$.amountFen')"}
BACKFILL_TRANSACTIONS = """
INSERT INTO report_delta ({columns})
SELECT t.brand_id, COALESCE(t.store_id, 0), t.kind, '', '', '', 0, 0, COUNT(*),
       SUM(CASE WHEN {purchase} THEN 1 ELSE 0 END), SUM(CASE WHEN {purchase} THEN {amount} ELSE 0 END),
       t.created_at
FROM ledger_transaction t
GROUP BY t.brand_id, COALESCE(t.store_id, 0), t.kind, t.created_at
"""


async def backfill(apps, state_editor) -> None:
    client = state_editor.client
    dialect = client.capabilities.dialect
    await client.execute_script(BACKFILL_POSTINGS)
    await client.execute_script(
        BACKFILL_TRANSACTIONS.format(columns=_COLUMNS, purchase=_PURCHASE[dialect], amount=_AMOUNT[dialect])
    )


async def no_backfill(apps, state_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [('models', '0013_lifecycle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReportDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand_id', fields.BigIntField()),
                ('day', fields.DateField()),
                ('store_id', fields.BigIntField(default=0)),
                ('kind', fields.CharField(max_length=24)),
                ('asset', fields.CharField(default='', max_length=16)),
                ('asset_code', fields.CharField(default='', max_length=32)),
                ('account_kind', fields.CharField(default='', max_length=16)),
                ('credit', fields.BigIntField(default=0)),
                ('debit', fields.BigIntField(default=0)),
                ('count', fields.BigIntField(default=0)),
                ('purchases', fields.BigIntField(default=0)),
                ('sales_fen', fields.BigIntField(default=0)),
            ],
            options={'table': 'report_day', 'app': 'models', 'unique_together': (('brand_id', 'day', 'store_id', 'kind', 'asset', 'asset_code', 'account_kind'),), 'pk_attr': 'id', 'table_description': 'The sum of every folded delta of one group and brand-local day.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReportDelta',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand_id', fields.BigIntField()),
                ('store_id', fields.BigIntField(default=0)),
                ('kind', fields.CharField(max_length=24)),
                ('asset', fields.CharField(default='', max_length=16)),
                ('asset_code', fields.CharField(default='', max_length=32)),
                ('account_kind', fields.CharField(default='', max_length=16)),
                ('credit', fields.BigIntField(default=0)),
                ('debit', fields.BigIntField(default=0)),
                ('count', fields.BigIntField(default=0)),
                ('purchases', fields.BigIntField(default=0)),
                ('sales_fen', fields.BigIntField(default=0)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'report_delta', 'app': 'models', 'pk_attr': 'id', 'table_description': 'What one ledger batch moved in one group, until the worker folds it into ``ReportDay``.'},
            bases=['Model'],
        ),
        ops.RunPython(backfill, reverse_code=no_backfill),
    ]
