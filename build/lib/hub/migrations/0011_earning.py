from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import EarnRuleKind, ReferralStatus, TierBasis, TierDirection, TierDowngrade, TierWindow
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from hub.migrations._operations import AddFieldWithDefault

# Purchases recorded before this migration become purchase rows (their earn transactions say what was
# paid and earned), and each membership's activity columns are filled from them: tiers, reports and
# "lapsed" read the same history whatever release wrote it.
_AMOUNT = {"postgres": "(t.details->>'{0}')::bigint", "sqlite": "CAST(json_extract(t.details, '$.{0}') AS INTEGER)"}
BACKFILL_PURCHASES = """
INSERT INTO purchase (brand_id, membership_id, store_id, transaction_id, amount_fen, points, pending,
                      purchased_at, created_at)
SELECT t.brand_id, t.membership_id, t.store_id, t.id, {amount}, COALESCE({points}, 0), 0,
       t.created_at, t.created_at
FROM ledger_transaction t
WHERE t.kind = 'earn' AND t.membership_id IS NOT NULL AND {amount} IS NOT NULL
"""
BACKFILL_ACTIVITY = """
UPDATE membership SET
    lifetime_spend_fen = (SELECT SUM(p.amount_fen) FROM purchase p WHERE p.membership_id = membership.id),
    last_purchase_at = (SELECT MAX(p.purchased_at) FROM purchase p WHERE p.membership_id = membership.id),
    last_purchase_store_id = (SELECT p.store_id FROM purchase p WHERE p.membership_id = membership.id
                              ORDER BY p.purchased_at DESC, p.id DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM purchase p WHERE p.membership_id = membership.id)
"""


async def backfill(apps, state_editor) -> None:
    client = state_editor.client
    dialect = client.capabilities.dialect
    amount, points = (_AMOUNT[dialect].format(name) for name in ("amountFen", "points"))
    await client.execute_script(BACKFILL_PURCHASES.format(amount=amount, points=points))
    await client.execute_script(BACKFILL_ACTIVITY)


async def no_backfill(apps, state_editor) -> None:
    return None

class Migration(migrations.Migration):
    dependencies = [('models', '0010_coupons')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EarnRule',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='earn_rules', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='hub.domain.EarnRuleKind', enum_type=EarnRuleKind, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'earn_rule', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EarnRuleVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule', fields.ForeignKeyField('models.EarnRule', source_field='rule_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.RESTRICT)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='earn_rule_versions', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('effective_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('active', fields.BooleanField(default=True)),
                ('name', fields.CharField(max_length=100)),
                ('position', fields.IntField(default=0)),
                ('spec', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by_key_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'earn_rule_version', 'app': 'models', 'unique_together': (('rule', 'version'),), 'indexes': [Index(fields=['brand_id'])], 'pk_attr': 'id', 'table_description': 'What a rule says from ``effective_from`` on, until a later version of the same rule.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Purchase',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.RESTRICT)),
                ('store', fields.ForeignKeyField('models.Store', source_field='store_id', null=True, db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.RESTRICT)),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='purchase', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('points', fields.BigIntField()),
                ('pending', fields.BigIntField(default=0)),
                ('purchased_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'purchase', 'app': 'models', 'indexes': [Index(fields=['membership_id', 'purchased_at'])], 'pk_attr': 'id', 'table_description': 'One purchase that went through the earn evaluation: what tiers, referrals and reports count.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PurchaseRefund',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('purchase', fields.ForeignKeyField('models.Purchase', source_field='purchase_id', db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='purchase_refunds', on_delete=OnDelete.RESTRICT)),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='purchase_refund', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('points', fields.BigIntField()),
                ('purchased_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'purchase_refund', 'app': 'models', 'indexes': [Index(fields=['membership_id', 'purchased_at'])], 'pk_attr': 'id', 'table_description': "A refund of (part of) a purchase, as the refund's writer reports it (once per refund"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Referral',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='referrals', on_delete=OnDelete.RESTRICT)),
                ('referrer', fields.ForeignKeyField('models.Membership', source_field='referrer_id', db_constraint=True, to_field='id', related_name='referrals_made', on_delete=OnDelete.RESTRICT)),
                ('referee', fields.OneToOneField('models.Membership', source_field='referee_id', db_constraint=True, to_field='id', related_name='referral', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='hub.domain.ReferralStatus', enum_type=ReferralStatus, max_length=16)),
                ('purchase_transaction_id', fields.BigIntField(null=True)),
                ('referrer_transaction_id', fields.BigIntField(null=True)),
                ('referee_transaction_id', fields.BigIntField(null=True)),
                ('referrer_capped', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('rewarded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'referral', 'app': 'models', 'indexes': [Index(fields=['referrer_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReferralCode',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=16)),
                ('membership', fields.OneToOneField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='referral_code', on_delete=OnDelete.RESTRICT)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='referral_codes', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'referral_code', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Tier',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='tiers', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=64)),
                ('threshold', fields.BigIntField()),
            ],
            options={'table': 'tier', 'app': 'models', 'unique_together': (('brand', 'code'),), 'pk_attr': 'id', 'table_description': 'One step of a ladder above the base tier: reached with ``threshold`` points (or fen).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TierChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='tier_changes', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='tier_changes', on_delete=OnDelete.RESTRICT)),
                ('seq', fields.IntField()),
                ('from_tier', fields.CharField(max_length=32)),
                ('to_tier', fields.CharField(max_length=32)),
                ('direction', fields.CharEnumField(description='hub.domain.TierDirection', enum_type=TierDirection, max_length=8)),
                ('reason', fields.CharField(max_length=200)),
                ('value', fields.BigIntField()),
                ('review_period', fields.CharField(null=True, max_length=16)),
                ('transaction', fields.ForeignKeyField('models.LedgerTransaction', source_field='transaction_id', null=True, db_constraint=True, to_field='id', related_name='tier_changes', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'tier_change', 'app': 'models', 'unique_together': (('membership', 'seq'), ('membership', 'review_period')), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TierLadder',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.OneToOneField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='tier_ladder', on_delete=OnDelete.RESTRICT)),
                ('basis', fields.CharEnumField(description='hub.domain.TierBasis', enum_type=TierBasis, max_length=16)),
                ('window', fields.CharEnumField(description='hub.domain.TierWindow', enum_type=TierWindow, max_length=16)),
                ('rolling_days', fields.IntField(default=365)),
                ('downgrade', fields.CharEnumField(description='hub.domain.TierDowngrade', enum_type=TierDowngrade, max_length=16)),
                ('reviewed_period', fields.CharField(default='', max_length=16)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'tier_ladder', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        AddFieldWithDefault(
            model_name='Brand',
            name='pending_days',
            field=fields.IntField(default=0),
            sql_type='INT',
            sql_default='0',
        ),
        AddFieldWithDefault(
            model_name='Brand',
            name='rules_version',
            field=fields.BigIntField(default=0),
            sql_type='BIGINT',
            sql_default='0',
        ),
        ops.AddField(
            model_name='Member',
            name='birthday',
            field=fields.DateField(null=True),
        ),
        AddFieldWithDefault(
            model_name='Membership',
            name='lifetime_spend_fen',
            field=fields.BigIntField(default=0),
            sql_type='BIGINT',
            sql_default='0',
        ),
        # Open pending lots, for the maturity job (only these carry matures_at).
        ops.RunSQL(
            ["CREATE INDEX lot_maturing_idx ON lot (id) WHERE remaining > 0 AND matures_at IS NOT NULL"],
            reverse_sql=["DROP INDEX lot_maturing_idx"],
        ),
        ops.RunPython(backfill, reverse_code=no_backfill),
    ]
