from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import PartnerOfferKind, PartnershipStatus, SettlementPeriod, StatementStatus, TermsStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_passes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Partnership',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('points_brand', fields.ForeignKeyField('models.Brand', source_field='points_brand_id', db_constraint=True, to_field='id', related_name='partnerships_as_points', on_delete=OnDelete.RESTRICT)),
                ('offer_brand', fields.ForeignKeyField('models.Brand', source_field='offer_brand_id', db_constraint=True, to_field='id', related_name='partnerships_as_offers', on_delete=OnDelete.RESTRICT)),
                ('proposed_by_id', fields.BigIntField()),
                ('name', fields.CharField(max_length=100)),
                ('status', fields.CharEnumField(description='hub.domain.PartnershipStatus', enum_type=PartnershipStatus, max_length=16)),
                ('current_version', fields.IntField(null=True)),
                ('pseudonym_key', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'partnership', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnershipStatement',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partnership', fields.ForeignKeyField('models.Partnership', source_field='partnership_id', db_constraint=True, to_field='id', related_name='statements', on_delete=OnDelete.RESTRICT)),
                ('period', fields.CharEnumField(description='hub.domain.SettlementPeriod', enum_type=SettlementPeriod, max_length=8)),
                ('period_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('period_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(description='hub.domain.StatementStatus', enum_type=StatementStatus, max_length=8)),
                ('lines_count', fields.BigIntField(default=0)),
                ('points_total', fields.BigIntField(default=0)),
                ('fen_total', fields.BigIntField(default=0)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('payment_reference', fields.CharField(default='', max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'partnership_statement', 'app': 'models', 'unique_together': (('partnership', 'period_start'),), 'pk_attr': 'id', 'table_description': 'What the points brand owes the offer brand for one period, frozen once closed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnershipTerms',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partnership', fields.ForeignKeyField('models.Partnership', source_field='partnership_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('status', fields.CharEnumField(description='hub.domain.TermsStatus', enum_type=TermsStatus, max_length=16)),
                ('proposed_by_id', fields.BigIntField()),
                ('accepted_by_points', fields.BooleanField(default=False)),
                ('accepted_by_offer', fields.BooleanField(default=False)),
                ('store_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('limit_per_day', fields.IntField(null=True)),
                ('limit_per_month', fields.IntField(null=True)),
                ('budget_count', fields.BigIntField(null=True)),
                ('budget_fen', fields.BigIntField(null=True)),
                ('period', fields.CharEnumField(description='hub.domain.SettlementPeriod', enum_type=SettlementPeriod, max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partnership_terms', 'app': 'models', 'unique_together': (('partnership', 'version'),), 'pk_attr': 'id', 'table_description': "One version of a partnership's terms: in force once both HQs accepted it."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerOffer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('terms', fields.ForeignKeyField('models.PartnershipTerms', source_field='terms_id', db_constraint=True, to_field='id', related_name='offers', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharEnumField(description='hub.domain.PartnerOfferKind', enum_type=PartnerOfferKind, max_length=16)),
                ('points_price', fields.BigIntField()),
                ('settlement_fen', fields.BigIntField()),
                ('coupon_template_id', fields.BigIntField(null=True)),
            ],
            options={'table': 'partner_offer', 'app': 'models', 'unique_together': (('terms', 'code'),), 'pk_attr': 'id', 'table_description': "What the offer brand sells for the points brand's points, in one version of the terms."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerLine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transaction_id', fields.BigIntField(unique=True)),
                ('partnership', fields.ForeignKeyField('models.Partnership', source_field='partnership_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.RESTRICT)),
                ('statement', fields.ForeignKeyField('models.PartnershipStatement', source_field='statement_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('offer', fields.ForeignKeyField('models.PartnerOffer', source_field='offer_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.RESTRICT)),
                ('store_id', fields.BigIntField()),
                ('membership_id', fields.BigIntField()),
                ('member_pseudonym', fields.CharField(max_length=32)),
                ('points', fields.BigIntField()),
                ('fen', fields.BigIntField()),
                ('voids_id', fields.BigIntField(null=True)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_line', 'app': 'models', 'indexes': [Index(fields=['partnership_id', 'occurred_at']), Index(fields=['statement_id'])], 'pk_attr': 'id', 'table_description': 'One redemption (positive) or void (negative) on a statement, mirroring its ledger transaction.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RedemptionCode',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=16)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='redemption_codes', on_delete=OnDelete.RESTRICT)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'redemption_code', 'app': 'models', 'pk_attr': 'id', 'table_description': "A member's one-time consent: valid about two minutes, used once (a ledger guard decides)."},
            bases=['Model'],
        ),
    ]
