"""Moving the audit log out of `monitoring` keeps every entry (data migrated in place)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("monitoring", "0004_alert_kind_and_audit_action_choices"), ("audit", None)]


@pytest.mark.django_db(transaction=True)
def test_entries_written_before_the_move_are_in_the_audit_app_after_it() -> None:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    executor = MigrationExecutor(connection)
    old_apps = executor.loader.project_state(list(executor.loader.applied_migrations)).apps
    OldEntry = old_apps.get_model("monitoring", "AuditEntry")
    ContentType = old_apps.get_model("contenttypes", "ContentType")
    ContentType.objects.get_or_create(app_label="monitoring", model="auditentry")
    OldEntry.objects.create(actor_label="officer@example.test", action="call_pause", reason="why")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(latest)

    from audit.models import AuditEntry

    entry = AuditEntry.objects.get()
    assert (entry.actor_label, entry.action, entry.reason) == (
        "officer@example.test",
        "call_pause",
        "why",
    )
    from django.contrib.contenttypes.models import ContentType as LiveContentType

    LiveContentType.objects.clear_cache()
    assert LiveContentType.objects.filter(app_label="audit", model="auditentry").exists()
    assert not LiveContentType.objects.filter(app_label="monitoring", model="auditentry").exists()
    # The sequence goes on after the moved rows.
    from audit.services import audit_record

    assert audit_record(actor=None, action="call_resume").pk > entry.pk
