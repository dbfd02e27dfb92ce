"""Bookings: a prisoner's call with a lead visitor on one terminal for one slot.

What must never happen is enforced by the database: a terminal is never double-booked
and a prisoner never has two active bookings at the same start (partial unique
constraints below); the monthly allowance is checked under a lock on the prisoner row
(bookings.services).
"""

from __future__ import annotations

import re
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from establishments.models import Establishment, Prisoner, Terminal
from identity.models import Connection, Dependant, VisitorProfile

# A reference a person can read out on the phone: no 0/O, 1/I/L, 5/S, 2/Z, 8/B, U/V.
REFERENCE_ALPHABET = "ACDEFGHJKMNPQRTWXY34679"
REFERENCE_LENGTH = 8


def new_short_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalise_short_reference(text: str) -> str:
    """What a person typed or read out ('acd3 f7kx', 'ACD3-F7KX') as stored; "" when
    it cannot be a reference."""
    value = re.sub(r"[\s-]", "", str(text)[:40]).upper()
    if len(value) != REFERENCE_LENGTH or any(c not in REFERENCE_ALPHABET for c in value):
        return ""
    return value


class BookingStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested (waiting for the family to accept)")
    CONFIRMED = "confirmed", _("Confirmed")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")
    NO_SHOW = "no_show", _("No show")
    TERMINATED = "terminated", _("Ended by staff")


# Bookings that hold their terminal and slot.
ACTIVE_STATUSES = (BookingStatus.REQUESTED, BookingStatus.CONFIRMED)
# Bookings that use the prisoner's monthly allowance.
ALLOWANCE_STATUSES = (
    BookingStatus.REQUESTED,
    BookingStatus.CONFIRMED,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
    BookingStatus.TERMINATED,
)


class BookingOrigin(models.TextChoices):
    FAMILY = "family", _("Booked by the family")
    PRISONER = "prisoner", _("Requested by the prisoner")


class CancelReason(models.TextChoices):
    FAMILY = "family", _("Cancelled by the family")
    LOCKDOWN = "lockdown", _("Lockdown")
    STAFF_SHORTAGE = "staff_shortage", _("Staff shortage")
    TECHNICAL_FAULT = "technical_fault", _("Technical fault")
    PRISONER_MOVED = "prisoner_moved", _("Prisoner moved")
    REQUEST_LAPSED = "request_lapsed", _("Request not answered in time")
    REQUEST_DECLINED = "request_declined", _("Request declined by the family")
    OTHER = "other", _("Other")


class MoveReason(models.TextChoices):
    """Why a visits admin moves a call: told to the family and kept in the audit log."""

    STAFF_SHORTAGE = "staff_shortage", _("Staff shortage")
    TECHNICAL_FAULT = "technical_fault", _("Technical fault")
    PRISONER_UNAVAILABLE = "prisoner_unavailable", _("The person in prison cannot make that time")
    TIMETABLE_CHANGE = "timetable_change", _("A change to the prison's timetable")
    FAMILY_ASKED = "family_asked", _("You asked for another time")
    OTHER = "other", _("Other")


class Booking(models.Model):
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Stored upper case; found case-insensitively through normalise_short_reference.
    short_reference = models.CharField(
        max_length=REFERENCE_LENGTH, unique=True, editable=False, default=new_short_reference
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="bookings"
    )
    prisoner = models.ForeignKey(Prisoner, on_delete=models.PROTECT, related_name="bookings")
    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="bookings")
    lead_visitor = models.ForeignKey(
        VisitorProfile, on_delete=models.PROTECT, related_name="bookings"
    )
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="bookings")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # The laptop is the booking's until the changeover after the call is over (ends_at
    # + the establishment's changeover_minutes when booked): the PostgreSQL exclusion
    # constraint keeps these ranges apart on each terminal (migration 0004). Blank:
    # save() fills it for writers that do not know about changeovers.
    terminal_free_at = models.DateTimeField(blank=True)
    # First day of the calendar month (establishment time) whose allowance this uses.
    allowance_month = models.DateField()
    status = models.CharField(max_length=16, choices=BookingStatus.choices)
    origin = models.CharField(
        max_length=16, choices=BookingOrigin.choices, default=BookingOrigin.FAMILY
    )
    # A retried or double-clicked POST carries the same key and creates one booking.
    idempotency_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    aup_accepted_at = models.DateTimeField(null=True, blank=True)
    request_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    cancel_note = models.CharField(max_length=300, blank=True)
    reminder_24h_sent_at = models.DateTimeField(null=True, blank=True)
    reminder_1h_sent_at = models.DateTimeField(null=True, blank=True)
    # The calendar file's SEQUENCE (RFC 5545): 0 when booked, one more on each move and
    # on the cancellation, so a calendar replaces the event it holds (same UID).
    calendar_sequence = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["starts_at"]
        indexes = [
            models.Index(fields=["establishment", "starts_at"]),
            models.Index(fields=["prisoner", "allowance_month"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["terminal", "starts_at"],
                condition=Q(status__in=["requested", "confirmed"]),
                name="booking_terminal_not_double_booked",
            ),
            models.UniqueConstraint(
                fields=["prisoner", "starts_at"],
                condition=Q(status__in=["requested", "confirmed"]),
                name="booking_prisoner_one_call_at_a_time",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="booking_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(terminal_free_at__gte=models.F("ends_at")),
                name="booking_terminal_free_after_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prisoner.prison_number} {self.starts_at:%Y-%m-%d %H:%M} ({self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        # bookings.services sets terminal_free_at with the changeover; other writers
        # (test calls, demo data) that do not still get a well-formed row.
        if self.terminal_free_at is None and self.ends_at is not None:
            self.terminal_free_at = self.ends_at
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def short_reference_display(self) -> str:
        """'ACD3-F7KX': two halves are easier to read out."""
        half = REFERENCE_LENGTH // 2
        return f"{self.short_reference[:half]}-{self.short_reference[half:]}"


class BookingVisitor(models.Model):
    """Who joins the call: the lead visitor, adults in their group, their dependants."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="visitors")
    profile = models.ForeignKey(
        VisitorProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dependant = models.ForeignKey(
        Dependant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(profile__isnull=False, dependant__isnull=True)
                | Q(profile__isnull=True, dependant__isnull=False),
                name="bookingvisitor_exactly_one_person",
            ),
            models.UniqueConstraint(
                fields=["booking", "profile"], name="bookingvisitor_unique_profile"
            ),
            models.UniqueConstraint(
                fields=["booking", "dependant"], name="bookingvisitor_unique_dependant"
            ),
        ]

    def __str__(self) -> str:
        return str(self.profile or self.dependant)
