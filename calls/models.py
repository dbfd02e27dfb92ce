"""Calls: the live side of a booking. State lives here, changed by conditional updates."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking


class CallStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting for participants")
    LIVE = "live", _("Live")
    PAUSED = "paused", _("Paused")
    ENDED = "ended", _("Ended")


class EndReason(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    TERMINATED = "terminated", _("Terminated by staff")
    TIME_UP = "time_up", _("Time up")
    REVOKED = "revoked", _("Visitor approval revoked")
    FAILED = "failed", _("Failed")
    NO_SHOW = "no_show", _("No show")


class PauseReason(models.TextChoices):
    UNAPPROVED_FACE = "unapproved_face", _("Unapproved face")
    STAFF = "staff", _("Paused by staff")


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="call")
    status = models.CharField(max_length=16, choices=CallStatus.choices, default=CallStatus.WAITING)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    pause_reason = models.CharField(max_length=20, choices=PauseReason.choices, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the call will end: started_at + call minutes + paused time, capped at slot end.
    ends_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(default=0)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The relay process that owns this call's media (its channel-layer name).
    relay_channel = models.CharField(max_length=200, blank=True)
    relay_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"Call {self.id} ({self.status})"

    @property
    def status_label(self) -> str:
        from calls.labels import status_label

        return status_label(self.status, self.pause_reason, self.end_reason)


class CallEventKind(models.TextChoices):
    JOINED = "joined", _("Joined")
    LEFT = "left", _("Left")
    DROPPED = "dropped", _("Connection lost")
    STARTED = "started", _("Started")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
    MESSAGE = "message", _("Staff message")
    WARNING = "warning", _("Time warning")
    ENDED = "ended", _("Ended")


class CallEvent(models.Model):
    """Append-only record of what happened on a call, who or what decided, and when."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=CallEventKind.choices)
    role = models.CharField(
        max_length=16, blank=True, help_text="family, prisoner, monitor, system"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.call_id} {self.kind} {self.created_at:%H:%M:%S}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("Call events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def role_label(self) -> str:
        from calls.labels import ROLE

        return str(ROLE.get(self.role, self.role))

    @property
    def reason_label(self) -> str:
        from calls.labels import event_reason_label

        return event_reason_label(self.kind, self.reason)

    @property
    def summary(self) -> str:
        """One line for staff: 'Paused (Staff): paused by staff – officer@example.org'."""
        text = str(self.get_kind_display())
        if self.role:
            text += f" ({self.role_label})"
        if self.reason:
            text += f": {self.reason_label}"
        if self.actor_id is not None and self.actor is not None:
            text += f" – {self.actor.email}"
        return text


class CallRole(models.TextChoices):
    FAMILY = "family", _("Family")
    PRISONER = "prisoner", _("Prisoner")
    MONITOR = "monitor", _("Staff monitor")


class CallConnection(models.Model):
    """One open signalling socket of one participant.

    A participant counts as connected while a row of theirs has no ``left_at`` and was
    seen recently (heartbeats refresh ``last_seen_at``), so a web process that dies
    without closing its sockets does not leave anyone "connected" for ever.
    """

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="connections")
    role = models.CharField(max_length=16, choices=CallRole.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel_name = models.CharField(max_length=200)
    # The participant turned their microphone off (the others and monitors are told).
    muted = models.BooleanField(default=False)
    connected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    left_reason = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["connected_at", "pk"]
        indexes = [models.Index(fields=["call", "left_at"])]

    def __str__(self) -> str:
        return f"{self.call_id} {self.role} {'open' if self.left_at is None else 'closed'}"
