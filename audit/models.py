"""The audit log: every staff action and security decision, append-only.

Every app writes to it (identity, bookings, calls, monitoring), so it sits below them
all: it depends on nothing but the establishments it is filed under.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from establishments.models import Establishment


class AuditAction(models.TextChoices):
    CALL_PAUSE = "call_pause", _("Paused a call")
    CALL_RESUME = "call_resume", _("Resumed a call")
    CALL_TERMINATE = "call_terminate", _("Terminated a call")
    CALL_MESSAGE = "call_message", _("Sent a message to a call")
    IDENTITY_APPROVE = "identity_approve", _("Approved an identity")
    IDENTITY_REJECT = "identity_reject", _("Rejected an identity")
    ID_IMAGE_VIEW = "id_image_view", _("Viewed an identity image")
    ID_IMAGE_DENIED = "id_image_denied", _("Was refused an identity image")
    DEPENDANT_APPROVE = "dependant_approve", _("Approved a dependant")
    DEPENDANT_REJECT = "dependant_reject", _("Rejected a dependant")
    CONNECTION_APPROVE = "connection_approve", _("Approved a connection")
    CONNECTION_REJECT = "connection_reject", _("Rejected a connection")
    CONNECTION_REVOKE = "connection_revoke", _("Revoked a connection")
    BOOKING_CREATE = "booking_create", _("Entered a prisoner's call request")
    BOOKING_CANCEL = "booking_cancel", _("Cancelled a booking")
    BOOKING_MOVE = "booking_move", _("Moved a booking")
    SCHEDULE_CHANGE = "schedule_change", _("Changed the schedule")
    BLOCKED_DATE_ADD = "blocked_date_add", _("Blocked a date")
    PRISONER_ENROL = "prisoner_enrol", _("Enrolled a prisoner's photo")
    PRISONER_ENROL_REMOVE = "prisoner_enrol_remove", _("Removed a prisoner's photo")
    SNAPSHOT_VIEW = "snapshot_view", _("Viewed an evidence snapshot")
    PERMISSION_DENIED = "permission_denied", _("Was refused an action")
    ALERT_ACKNOWLEDGE = "alert_acknowledge", _("Acknowledged an alert")
    TEST_CALL_PLACE = "test_call_place", _("Placed a staff test call")
    CONNECTION_REQUESTS_PAUSED = (
        "connection_requests_paused",
        _("Connection requests paused (too many that did not match)"),
    )
    FAMILY_EXPORT = "family_export", _("Exported a family's data (subject access request)")
    FAMILY_ERASE = "family_erase", _("Erased a family's data")


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept even if the account is later deleted.
    actor_label = models.CharField(max_length=254)
    establishment = models.ForeignKey(
        Establishment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        # The index keeps the name it was created with in `monitoring`.
        indexes = [
            models.Index(
                fields=["establishment", "created_at"], name="monitoring__establi_c79b34_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit entries cannot be deleted.")
