from tortoise import migrations
from tortoise import fields

from hub.migrations._operations import AddFieldWithDefault


class Migration(migrations.Migration):
    dependencies = [('models', '0005_tenancy')]

    initial = False

    operations = [
        AddFieldWithDefault(
            model_name='Brand',
            name='point_value_fen',
            field=fields.IntField(default=100),
            sql_type='INT',
            sql_default='100',
        ),
        AddFieldWithDefault(
            model_name='Brand',
            name='point_value_points',
            field=fields.IntField(default=100),
            sql_type='INT',
            sql_default='100',
        ),
        AddFieldWithDefault(
            model_name='Brand',
            name='timezone',
            field=fields.CharField(default='Asia/Shanghai', max_length=64),
            sql_type='VARCHAR(64)',
            sql_default="'Asia/Shanghai'",
        ),
    ]
