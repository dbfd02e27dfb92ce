"""Bookings: a prisoner's call with a lead visitor on one terminal for one slot.

What must never happen is enforced by the database: a terminal is never double-booked
and a prisoner never has two active bookings at the same start (partial unique
constraints below); the monthly allowance is checked under a lock on the prisoner row
(bookings.services).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from establishments.models import Establishment, Prisoner, Terminal
from identity.models import Connection, Dependant, VisitorProfile


class BookingStatus(models.TextChoices):
    REQUESTED = "requested", "Requested (waiting for the family to accept)"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "No show"
    TERMINATED = "terminated", "Ended by staff"


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
    FAMILY = "family", "Booked by the family"
    PRISONER = "prisoner", "Requested by the prisoner"


class CancelReason(models.TextChoices):
    FAMILY = "family", "Cancelled by the family"
    LOCKDOWN = "lockdown", "Lockdown"
    STAFF_SHORTAGE = "staff_shortage", "Staff shortage"
    TECHNICAL_FAULT = "technical_fault", "Technical fault"
    PRISONER_MOVED = "prisoner_moved", "Prisoner moved"
    REQUEST_LAPSED = "request_lapsed", "Request not answered in time"
    REQUEST_DECLINED = "request_declined", "Request declined by the family"
    OTHER = "other", "Other"


class Booking(models.Model):
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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
        ]

    def __str__(self) -> str:
        return f"{self.prisoner.prison_number} {self.starts_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class BookingVisitor(models.Model):
    """Who joins the call: the lead visitor, other approved visitors, dependants."""

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
