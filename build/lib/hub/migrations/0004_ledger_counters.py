from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_ledger_core')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LedgerCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=160)),
                ('value', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ledger_counter', 'app': 'models', 'pk_attr': 'id', 'table_description': "A guard's counter (``hub.ledger.commands.Guard``): moved only by the engine, in the transaction"},
            bases=['Model'],
        ),
    ]
