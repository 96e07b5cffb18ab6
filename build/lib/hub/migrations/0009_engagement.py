from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.domain import LimitPeriod
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_membership_activity')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CheckIn',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='check_ins', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='check_ins', on_delete=OnDelete.RESTRICT)),
                ('day', fields.DateField()),
                ('streak', fields.IntField()),
                ('points', fields.BigIntField()),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='check_in', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'check_in', 'app': 'models', 'unique_together': (('membership', 'day'),), 'pk_attr': 'id', 'table_description': "One membership's check-in on one brand-local day, with the streak it reached."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CheckInProgram',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.OneToOneField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='check_in_program', on_delete=OnDelete.RESTRICT)),
                ('enabled', fields.BooleanField(default=True)),
                ('daily_points', fields.IntField(default=0)),
                ('streak_bonuses', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('cycle_days', fields.IntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'check_in_program', 'app': 'models', 'pk_attr': 'id', 'table_description': "A brand's daily check-in rewards, set by HQ. No row: the brand has no check-in."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EngagementEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='engagement_events', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('points', fields.IntField()),
                ('limit_per_member', fields.IntField(default=1)),
                ('limit_period', fields.CharEnumField(default=LimitPeriod.TOTAL, description='hub.domain.LimitPeriod', enum_type=LimitPeriod, max_length=8)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'engagement_event', 'app': 'models', 'unique_together': (('brand', 'code'),), 'pk_attr': 'id', 'table_description': 'Something HQ rewards (survey completed, profile completed, app downloaded), reported by a store'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EngagementEventReward',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='engagement_rewards', on_delete=OnDelete.RESTRICT)),
                ('event', fields.ForeignKeyField('models.EngagementEvent', source_field='event_id', db_constraint=True, to_field='id', related_name='rewards', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='engagement_rewards', on_delete=OnDelete.RESTRICT)),
                ('period', fields.CharField(max_length=16)),
                ('guard_key', fields.CharField(max_length=160)),
                ('points', fields.BigIntField()),
                ('store', fields.ForeignKeyField('models.Store', source_field='store_id', null=True, db_constraint=True, to_field='id', related_name='engagement_rewards', on_delete=OnDelete.RESTRICT)),
                ('transaction', fields.OneToOneField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='engagement_reward', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'engagement_event_reward', 'app': 'models', 'indexes': [Index(fields=['guard_key']), Index(fields=['membership_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One reward of an event to a member: the record of its ledger transaction.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GrantPlan',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.OneToOneField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='grant_plan', on_delete=OnDelete.RESTRICT)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', db_constraint=True, to_field='id', related_name='grant_plans', on_delete=OnDelete.RESTRICT)),
                ('snapshot_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('recipients', fields.BigIntField()),
            ],
            options={'table': 'grant_plan', 'app': 'models', 'pk_attr': 'id', 'table_description': "When a bulk grant's set was fixed and how many members it holds."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GrantRecipient',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.ForeignKeyField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='grant_recipients', on_delete=OnDelete.RESTRICT)),
                ('membership', fields.ForeignKeyField('models.Membership', source_field='membership_id', db_constraint=True, to_field='id', related_name='grants_received', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'grant_recipient', 'app': 'models', 'unique_together': (('job', 'membership'),), 'indexes': [Index(fields=['membership_id'])], 'pk_attr': 'id', 'table_description': "One member of a bulk grant's fixed set. Its grant is the ledger transaction with the claim"},
            bases=['Model'],
        ),
    ]
