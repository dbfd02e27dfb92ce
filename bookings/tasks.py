"""Celery tasks: thin wrappers that take ids, re-fetch and call services."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from bookings import services
from bookings.models import Booking, BookingStatus
from bookings.notifications import (
    CONFIRMED,
    KINDS,
    MOVED,
    MOVED_BY_FAMILY,
    REMINDER_1H,
    REMINDER_24H,
    build_booking_email,
)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, acks_late=True)
def send_booking_email(
    booking_id: int, kind: str, previous_starts_at: str = "", reason: str = ""
) -> bool:
    """``previous_starts_at`` (ISO 8601) and ``reason``: a move's old time and why."""
    if kind not in KINDS:
        return False
    booking = (
        Booking.objects.select_related("prisoner", "establishment", "lead_visitor__user")
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        return False
    # A reminder, a confirmation or a move of a call cancelled since it was queued
    # would only confuse: the cancellation's own email follows.
    if kind in (REMINDER_24H, REMINDER_1H) and booking.status != BookingStatus.CONFIRMED:
        return False
    if kind in (CONFIRMED, MOVED, MOVED_BY_FAMILY) and booking.status == BookingStatus.CANCELLED:
        return False
    previous = _moment(previous_starts_at)
    build_booking_email(booking, kind, previous_starts_at=previous, reason=reason[:400]).send()
    return True


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


@shared_task
def lapse_booking_requests() -> int:
    return services.booking_requests_lapse()


@shared_task
def send_booking_reminders() -> dict[str, int]:
    return services.booking_reminders_send()
