"""The audit log moves to the `audit` app: its table is renamed, its rows stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0004_alert_kind_and_audit_action_choices'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name='auditentry', table='audit_auditentry'),
            ],
            state_operations=[
                migrations.DeleteModel(name='auditentry'),
            ],
        ),
    ]
