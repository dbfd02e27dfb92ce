"""Alerts for the staff dashboard and staff test calls (the audit log is in `audit`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from establishments.models import Establishment


class AlertKind(models.TextChoices):
    UNAPPROVED_FACE = "unapproved_face", _("Unapproved face on camera")
    PARTICIPANT_DROPPED = "participant_dropped", _("Participant dropped")
    FACE_CHECKS_OFF = "face_checks_off", _("Face checks off: someone was verified by hand")


def _snapshot_path(instance: models.Model, filename: str) -> str:
    import uuid

    return f"monitoring/snapshots/{uuid.uuid4().hex}.jpg"


class Alert(models.Model):
    """Something staff must see at once and acknowledge."""

    establishment = models.ForeignKey(Establishment, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    side = models.CharField(max_length=16, blank=True, help_text="family or prisoner")
    snapshot = models.FileField(upload_to=_snapshot_path, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["establishment", "acknowledged_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.call_id})"


class StaffTestCall(models.Model):
    """A call placed by staff to get ready (rollout stage 'test calls'): a staff member
    plays the family on the real family pages, with a fictional test prisoner on the
    real terminal. Never counts against a real prisoner's allowance (the prisoner is the
    establishment's test prisoner) and is left out of the national figures."""

    booking = models.OneToOneField(
        "bookings.Booking", on_delete=models.CASCADE, related_name="staff_test_call"
    )
    establishment = models.ForeignKey(Establishment, on_delete=models.CASCADE, related_name="+")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    family_played_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Test call {self.booking_id} at {self.establishment_id}"
