"""The audit log's model, moved from `monitoring` (0005 renamed its table; rows kept).

The state is created here without touching the database, and the content type (with
its permissions) is relabelled so that grants made in admin carry over.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _relabel_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="audit", model="auditentry").exists():
        ContentType.objects.filter(app_label="monitoring", model="auditentry").update(
            app_label="audit"
        )


def _unrelabel_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="audit", model="auditentry").update(
        app_label="monitoring"
    )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('establishments', '0001_initial'),
        ('monitoring', '0005_move_auditentry_to_audit'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_label', models.CharField(max_length=254)),
                ('action', models.CharField(choices=[('call_pause', 'Paused a call'), ('call_resume', 'Resumed a call'), ('call_terminate', 'Terminated a call'), ('call_message', 'Sent a message to a call'), ('identity_approve', 'Approved an identity'), ('identity_reject', 'Rejected an identity'), ('id_image_view', 'Viewed an identity image'), ('id_image_denied', 'Was refused an identity image'), ('dependant_approve', 'Approved a dependant'), ('dependant_reject', 'Rejected a dependant'), ('connection_approve', 'Approved a connection'), ('connection_reject', 'Rejected a connection'), ('connection_revoke', 'Revoked a connection'), ('booking_create', "Entered a prisoner's call request"), ('booking_cancel', 'Cancelled a booking'), ('booking_move', 'Moved a booking'), ('schedule_change', 'Changed the schedule'), ('blocked_date_add', 'Blocked a date'), ('prisoner_enrol', "Enrolled a prisoner's photo"), ('prisoner_enrol_remove', "Removed a prisoner's photo"), ('snapshot_view', 'Viewed an evidence snapshot'), ('permission_denied', 'Was refused an action'), ('alert_acknowledge', 'Acknowledged an alert'), ('test_call_place', 'Placed a staff test call')], max_length=32)),
                ('target_type', models.CharField(blank=True, max_length=64)),
                ('target_id', models.CharField(blank=True, max_length=64)),
                ('reason', models.TextField(blank=True)),
                ('detail', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('establishment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='establishments.establishment')),
            ],
            options={
                'verbose_name_plural': 'audit entries',
                'ordering': ['-created_at', '-pk'],
                'indexes': [models.Index(fields=['establishment', 'created_at'], name='monitoring__establi_c79b34_idx')],
            },
        ),
        ], database_operations=[]),
        migrations.RunPython(_relabel_content_type, _unrelabel_content_type),
    ]
