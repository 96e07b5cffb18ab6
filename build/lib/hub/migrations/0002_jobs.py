from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hub.models.jobs import JobStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', null=True, db_constraint=True, to_field='id', related_name='jobs', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(default='', max_length=200)),
                ('params', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=JobStatus.QUEUED, description='QUEUED: queued\nRUNNING: running\nDONE: done\nFAILED: failed\nCANCELLED: cancelled', enum_type=JobStatus, max_length=16)),
                ('revision', fields.BigIntField(default=0)),
                ('total', fields.BigIntField(null=True)),
                ('done', fields.BigIntField(default=0)),
                ('failed', fields.BigIntField(default=0)),
                ('planned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cursor', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('idempotency_scope', fields.CharField(null=True, max_length=64)),
                ('idempotency_key', fields.CharField(null=True, max_length=100)),
                ('request_hash', fields.CharField(null=True, max_length=64)),
                ('created_by', fields.ForeignKeyField('models.ApiKey', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='jobs', on_delete=OnDelete.SET_NULL)),
                ('lease_owner', fields.CharField(null=True, max_length=100)),
                ('lease_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('run_after', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cancel_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('last_error_expected', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'job', 'app': 'models', 'unique_together': (('idempotency_scope', 'idempotency_key'),), 'indexes': [Index(fields=['status', 'run_after']), Index(fields=['brand_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One unit of background work of a registered kind, with its progress and resume cursor.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobItemFailure',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.ForeignKeyField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='item_failures', on_delete=OnDelete.RESTRICT)),
                ('item_key', fields.CharField(max_length=100)),
                ('code', fields.CharField(max_length=64)),
                ('message', fields.CharField(max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'job_item_failure', 'app': 'models', 'indexes': [Index(fields=['job_id', 'id'])], 'pk_attr': 'id', 'table_description': "One item a job could not process, with the handler's code and message (capped per job)."},
            bases=['Model'],
        ),
    ]
