"""Celery tasks: thin wrappers that take ids, re-fetch and call services."""

from __future__ import annotations

from celery import shared_task

from bookings import services
from bookings.models import Booking, BookingStatus
from bookings.notifications import KINDS, REMINDER_1H, REMINDER_24H, build_booking_email


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, acks_late=True)
def send_booking_email(booking_id: int, kind: str) -> bool:
    if kind not in KINDS:
        return False
    booking = (
        Booking.objects.select_related("prisoner", "establishment", "lead_visitor__user")
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        return False
    # A reminder for a call cancelled since it was queued would only confuse.
    if kind in (REMINDER_24H, REMINDER_1H) and booking.status != BookingStatus.CONFIRMED:
        return False
    build_booking_email(booking, kind).send()
    return True


@shared_task
def lapse_booking_requests() -> int:
    return services.booking_requests_lapse()


@shared_task
def send_booking_reminders() -> dict[str, int]:
    return services.booking_reminders_send()
