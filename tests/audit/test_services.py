import pytest

from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from tests import factories

pytestmark = pytest.mark.django_db


def test_audit_record_keeps_who_what_where_and_why() -> None:
    user = factories.UserFactory(email="officer@example.test")
    prisoner = factories.PrisonerFactory()
    entry = audit_record(
        actor=user,
        action=AuditAction.CONNECTION_REVOKE,
        establishment=prisoner.establishment,
        target=prisoner,
        reason="Safeguarding concern",
    )
    entry.refresh_from_db()
    assert (entry.actor_label, entry.action, entry.target_type, entry.target_id, entry.reason) == (
        "officer@example.test",
        "connection_revoke",
        "establishments.prisoner",
        str(prisoner.pk),
        "Safeguarding concern",
    )
    assert entry.establishment == prisoner.establishment


def test_audit_entries_cannot_be_changed_or_deleted() -> None:
    entry = audit_record(actor=None, action=AuditAction.CALL_PAUSE, reason="face")
    assert entry.actor_label == "system"
    entry.reason = "edited"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.update(reason="x")
    assert AuditEntry.objects.get().reason == "face"
