from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_audit')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Membership',
            name='last_purchase_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Membership',
            name='last_purchase_store',
            field=fields.ForeignKeyField('models.Store', source_field='last_purchase_store_id', null=True, db_constraint=True, to_field='id', related_name='last_purchase_memberships', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddIndex(
            model_name='Membership',
            index=Index(fields=['brand_id', 'last_purchase_at']),
        ),
    ]
