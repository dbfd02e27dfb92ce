"""Emails to families about their bookings, queued after the transaction commits."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vText

from bookings.models import Booking, BookingStatus

CONFIRMED = "confirmed"
REQUESTED = "requested"
CANCELLED = "cancelled"
MOVED = "moved"
REMINDER_24H = "reminder_24h"
REMINDER_1H = "reminder_1h"
KINDS = (CONFIRMED, REQUESTED, CANCELLED, MOVED, REMINDER_24H, REMINDER_1H)

SUBJECTS = {
    CONFIRMED: "Your video call with {prisoner} is booked",
    REQUESTED: "{prisoner} has asked for a video call with you",
    CANCELLED: "Your video call with {prisoner} is cancelled",
    MOVED: "Your video call with {prisoner} has moved",
    REMINDER_24H: "Reminder: video call with {prisoner} tomorrow",
    REMINDER_1H: "Reminder: video call with {prisoner} in an hour",
}


def queue_booking_email(booking_id: int, kind: str) -> None:
    """Send after commit, so a rolled-back booking never emails anybody."""
    from bookings.tasks import send_booking_email

    transaction.on_commit(lambda: send_booking_email.delay(booking_id, kind))


def absolute_url(path: str) -> str:
    return settings.BOOKINGS_SITE_URL.rstrip("/") + path


def booking_ics(booking: Booking, *, now: datetime | None = None) -> bytes:
    """An iCalendar file for the call; a cancelled call gives a cancellation."""
    cancelled = booking.status == BookingStatus.CANCELLED
    calendar = Calendar()
    calendar.add("prodid", "-//Purple Visits//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", f"{booking.reference}@purplevisits")
    event.add("dtstamp", now or timezone.now())
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    # Moves and cancellations must replace what the calendar already holds.
    event.add("sequence", int((now or timezone.now()).timestamp()))
    event.add(
        "summary",
        f"Video call with {booking.prisoner.full_name} ({booking.prisoner.prison_number})",
    )
    event.add(
        "description",
        "Join from your calls page up to 10 minutes before the start: "
        + absolute_url(reverse("bookings:detail", args=[booking.reference])),
    )
    event["location"] = vText(f"Online – {booking.establishment.name}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


def recipients(booking: Booking) -> list[str]:
    emails = [booking.lead_visitor.user.email]
    for visitor in booking.visitors.select_related("profile__user"):
        if visitor.profile is not None and visitor.profile.user.email not in emails:
            emails.append(visitor.profile.user.email)
    return [email for email in emails if email]


def build_booking_email(booking: Booking, kind: str) -> EmailMultiAlternatives:
    tz = booking.establishment.tz
    context = {
        "booking": booking,
        "kind": kind,
        "local_start": timezone.localtime(booking.starts_at, tz),
        "local_end": timezone.localtime(booking.ends_at, tz),
        "detail_url": absolute_url(reverse("bookings:detail", args=[booking.reference])),
        "calls_url": absolute_url(reverse("bookings:my_bookings")),
        "SERVICE_NAME": settings.SERVICE_NAME,
    }
    subject = SUBJECTS[kind].format(prisoner=booking.prisoner.full_name)
    body = render_to_string("bookings/email/booking.txt", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=recipients(booking))
    if kind in (CONFIRMED, MOVED, CANCELLED, REMINDER_24H):
        message.attach("video-call.ics", booking_ics(booking), "text/calendar")
    return message
