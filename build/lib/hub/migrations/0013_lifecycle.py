from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import ExpiryKind
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0012_key_scopes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ExpiryPolicy',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='expiry_policies', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('kind', fields.CharEnumField(description='hub.domain.ExpiryKind', enum_type=ExpiryKind, max_length=16)),
                ('count', fields.IntField(default=0)),
                ('period', fields.CharField(default='', max_length=16)),
                ('clearing_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('effective_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reason', fields.CharField(default='', max_length=200)),
                ('created_by_key_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'expiry_policy', 'app': 'models', 'unique_together': (('brand', 'version'),), 'pk_attr': 'id', 'table_description': 'One version of a brand\'s expiry policy, in force from ``effective_from`` until the next version.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LifecycleSettings',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.OneToOneField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='lifecycle_settings', on_delete=OnDelete.RESTRICT)),
                ('notice_lead_days', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('transfers_enabled', fields.BooleanField(default=False)),
                ('transfer_min', fields.BigIntField(default=1)),
                ('transfer_max_per_day', fields.BigIntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'lifecycle_settings', 'app': 'models', 'pk_attr': 'id', 'table_description': "A brand's notice lead times and transfer limits (a brand without a row has the defaults)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExpiryNotice',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='expiry_notices', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='expiry_notices', on_delete=OnDelete.RESTRICT)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lead_days', fields.IntField()),
                ('points', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'expiry_notice', 'app': 'models', 'unique_together': (('membership', 'expires_at', 'lead_days'),), 'pk_attr': 'id', 'table_description': 'One ``pointsExpiring`` notice: a membership\'s points expiring at one date, told at one lead time.'},
            bases=['Model'],
        ),
        # Open lots that expire, by account then date: the expiry job walks accounts in id order and
        # reads each one's due lots from here; expiring-soon views read the same.
        ops.RunSQL(
            ["CREATE INDEX lot_expiring_idx ON lot (account_id, expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL",
             "CREATE INDEX lot_expiry_date_idx ON lot (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL"],
            reverse_sql=["DROP INDEX lot_expiring_idx", "DROP INDEX lot_expiry_date_idx"],
        ),
    ]
