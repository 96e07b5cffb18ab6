from tortoise import migrations
from tortoise import fields

from hub.migrations._operations import AddFieldWithDefault


class Migration(migrations.Migration):
    dependencies = [('models', '0011_earning')]

    initial = False

    operations = [
        # Existing keys get no scopes: personal data stays masked until a key is given the permission.
        AddFieldWithDefault(
            model_name='ApiKey',
            name='scopes',
            field=fields.CharField(default='', max_length=200),
            sql_type='VARCHAR(200)',
            sql_default="''",
        ),
    ]
