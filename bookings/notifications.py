"""Emails to families about their bookings, queued after the transaction commits.

Each email is built once as ``BookingEmail`` (greeting, paragraphs, the call's details,
one link, closing lines) and rendered twice from it: plain text
(templates/bookings/email/booking.txt) and HTML (booking.html on the one branded base,
templates/email/base.html: inline styles, no remote images), so the two parts say the
same. Links go to ``SITE_URL``. Confirmations, moves, cancellations and the day-before
reminder carry the call as an iCalendar invitation (RFC 5546): the same UID for the
booking's life, a SEQUENCE that rises on each change, METHOD REQUEST or CANCEL in the
file and on the MIME part, the establishment as ORGANIZER and the lead visitor as
ATTENDEE, so a calendar app updates or removes the event it already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.mime.text import MIMEText
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from icalendar import Calendar, Event, vCalAddress, vText

from bookings.models import Booking, BookingStatus, CancelReason
from purplevisits.text import one_line

CONFIRMED = "confirmed"
REQUESTED = "requested"
CANCELLED = "cancelled"
MOVED = "moved"  # by the establishment's staff, with a reason
MOVED_BY_FAMILY = "moved_by_family"
REMINDER_24H = "reminder_24h"
REMINDER_1H = "reminder_1h"
KINDS = (CONFIRMED, REQUESTED, CANCELLED, MOVED, MOVED_BY_FAMILY, REMINDER_24H, REMINDER_1H)
# The emails that carry the call for the family's calendar.
CALENDAR_KINDS = (CONFIRMED, MOVED, MOVED_BY_FAMILY, CANCELLED, REMINDER_24H)
# Cancellations of a request the family never accepted: nothing is in their calendar.
NEVER_IN_A_CALENDAR = (CancelReason.REQUEST_LAPSED, CancelReason.REQUEST_DECLINED)

SUBJECTS = {
    CONFIRMED: gettext_noop("Your video call with {prisoner} is booked"),
    REQUESTED: gettext_noop("{prisoner} has asked for a video call with you"),
    CANCELLED: gettext_noop("Your video call with {prisoner} is cancelled"),
    MOVED: gettext_noop("Your video call with {prisoner} has moved"),
    MOVED_BY_FAMILY: gettext_noop("Your video call with {prisoner} has moved"),
    REMINDER_24H: gettext_noop("Reminder: video call with {prisoner} tomorrow"),
    REMINDER_1H: gettext_noop("Reminder: video call with {prisoner} in an hour"),
}

CALENDAR_FILENAME = "video-call.ics"


def queue_booking_email(
    booking_id: int,
    kind: str,
    *,
    previous_starts_at: datetime | None = None,
    reason: str = "",
) -> None:
    """Send after commit, so a rolled-back booking never emails anybody. A move says
    the time it moved from (``previous_starts_at``) and why (``reason``, staff moves):
    what the booking no longer holds once it has moved."""
    from bookings.tasks import send_booking_email

    previous = previous_starts_at.isoformat() if previous_starts_at is not None else ""
    transaction.on_commit(lambda: send_booking_email.delay(booking_id, kind, previous, reason))


def absolute_url(path: str) -> str:
    return settings.BOOKINGS_SITE_URL.rstrip("/") + path


def organizer_email() -> str:
    """The address calendar apps show as the organiser's: the no-reply address the
    emails come from (DEFAULT_FROM_EMAIL). Replies to an invitation go nowhere a
    person reads, so the attendee is marked as not asked to reply (RSVP=FALSE)."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "no-reply@localhost"


def calendar_uid(booking: Booking) -> str:
    """The event's UID for the booking's whole life (moves and cancellation included)."""
    return f"{booking.reference}@purplevisits"


def calendar_method(booking: Booking) -> str:
    return "CANCEL" if booking.status == BookingStatus.CANCELLED else "REQUEST"


def booking_ics(
    booking: Booking,
    *,
    method: str | None = None,
    now: datetime | None = None,
    attendees: list[tuple[str, str]] | None = None,
) -> bytes:
    """The call as an iCalendar object: METHOD REQUEST (booked, moved) or CANCEL
    (cancelled; the default follows the booking's status), or PUBLISH for the
    "add to your calendar" download."""
    cancelled = booking.status == BookingStatus.CANCELLED
    method = method or calendar_method(booking)
    establishment = booking.establishment
    calendar = Calendar()
    calendar.add("prodid", "-//Purple Visits//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", calendar_uid(booking))
    event.add("dtstamp", now or timezone.now())
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    # 0 when booked, one more on each move and on the cancellation (bookings.services).
    event.add("sequence", booking.calendar_sequence)
    organizer = vCalAddress(f"mailto:{organizer_email()}")
    organizer.params["cn"] = vText(one_line(establishment.name))
    event.add("organizer", organizer)
    for email, name in attendees if attendees is not None else _attendees(booking):
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params["cn"] = vText(one_line(name))
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("ACCEPTED")
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee, encode=0)
    prisoner = booking.prisoner
    event.add(
        "summary",
        one_line(
            _("Video call with %(name)s (%(number)s)")
            % {"name": prisoner.full_name, "number": prisoner.prison_number}
        ),
    )
    if cancelled:
        description = _("This video call is cancelled. It will not take place.")
        if booking.cancel_reason:
            description += " " + _("Reason: %(reason)s.") % {"reason": cancel_reason_text(booking)}
        description += " " + _("Your calls: %(url)s") % {
            "url": absolute_url(reverse("bookings:my_bookings"))
        }
    else:
        description = _(
            "Join from your calls page up to %(minutes)d minutes before the start: %(url)s"
        ) % {
            "minutes": establishment.join_window_minutes,
            "url": absolute_url(reverse("bookings:detail", args=[booking.reference])),
        }
    event.add("description", description)
    event["location"] = vText(one_line(_("Online – %(name)s") % {"name": establishment.name}))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


def _attendees(booking: Booking) -> list[tuple[str, str]]:
    """(email, name) of each adult on the call with an email, the lead visitor first:
    who the email goes to and who the invitation names. One query."""
    people = [(booking.lead_visitor.user.email, booking.lead_visitor.legal_name)]
    for visitor in booking.visitors.select_related("profile__user"):
        profile = visitor.profile
        if profile is not None and profile.pk != booking.lead_visitor_id:
            people.append((profile.user.email, profile.legal_name))
    return [(email, name) for email, name in people if email]


def calendar_part(booking: Booking, attendees: list[tuple[str, str]] | None = None) -> MIMEText:
    """The .ics as a MIME part whose type carries the method, as RFC 6047 asks:
    ``text/calendar; method=REQUEST; charset=utf-8``."""
    method = calendar_method(booking)
    ics = booking_ics(booking, method=method, attendees=attendees)
    part = MIMEText(ics.decode("utf-8"), "calendar", "utf-8")
    part.set_param("method", method)
    part.add_header("Content-Disposition", "attachment", filename=CALENDAR_FILENAME)
    return part


def recipients(booking: Booking, attendees: list[tuple[str, str]] | None = None) -> list[str]:
    emails: list[str] = []
    for email, _name in attendees if attendees is not None else _attendees(booking):
        if email not in emails:
            emails.append(email)
    return emails


def cancel_reason_text(booking: Booking) -> str:
    label = booking.get_cancel_reason_display()
    return f"{label} – {booking.cancel_note}" if booking.cancel_note else label


@dataclass(frozen=True)
class BookingEmail:
    """What one email says, rendered as the plain text and the HTML part alike."""

    subject: str
    greeting: str
    paragraphs: list[str]
    rows: list[tuple[str, str]]  # (label, value): the call's details
    action: tuple[str, str] | None  # (what the link is for, absolute URL)
    after: list[str] = field(default_factory=list)


def _when(booking: Booking, starts_at: datetime, ends_at: datetime) -> str:
    tz = booking.establishment.tz
    start, end = timezone.localtime(starts_at, tz), timezone.localtime(ends_at, tz)
    return _("%(day)s, %(start)s to %(end)s (UK time)") % {
        "day": formats.date_format(start, "l j F Y"),
        "start": formats.time_format(start, "H:i"),
        "end": formats.time_format(end, "H:i"),
    }


def booking_email_content(
    booking: Booking,
    kind: str,
    *,
    previous_starts_at: datetime | None = None,
    reason: str = "",
) -> BookingEmail:
    establishment = booking.establishment
    prisoner = booking.prisoner
    detail_url = absolute_url(reverse("bookings:detail", args=[booking.reference]))
    calls_url = absolute_url(reverse("bookings:my_bookings"))
    paragraphs: list[str]
    after: list[str] = []
    action: tuple[str, str] | None = (
        _("Join up to %(minutes)d minutes before the start from your call's page")
        % {"minutes": establishment.join_window_minutes},
        detail_url,
    )
    rows = [
        (_("With"), f"{prisoner.full_name} ({prisoner.prison_number})"),
        (_("Prison"), establishment.name),
        (_("When"), _when(booking, booking.starts_at, booking.ends_at)),
        (_("Reference"), booking.short_reference_display),
    ]
    if kind == CONFIRMED:
        paragraphs = [_("Your video call is booked.")]
    elif kind == REQUESTED:
        expires = booking.request_expires_at
        paragraphs = [
            _(
                "%(name)s has asked for a video call with you. Accept or decline it on your "
                "calls page by %(expires)s (UK time); if you do not answer by then, the "
                "request lapses."
            )
            % {
                "name": prisoner.first_name,
                "expires": formats.date_format(
                    timezone.localtime(expires, establishment.tz), "l j F Y, H:i"
                )
                if expires
                else "",
            }
        ]
        action = (
            _("Accept or decline the call"),
            absolute_url(reverse("bookings:respond", args=[booking.reference])),
        )
    elif kind == CANCELLED:
        paragraphs = [_("Your video call has been cancelled.")]
        if booking.cancel_reason:
            rows.append((_("Reason"), cancel_reason_text(booking)))
        if booking.cancel_reason != CancelReason.FAMILY:
            after.append(
                _(
                    "This call does not count towards the monthly allowance: you can book "
                    "another one."
                )
            )
        action = (_("Your calls"), calls_url)
    elif kind in (MOVED, MOVED_BY_FAMILY):
        if kind == MOVED:
            paragraphs = [
                _("%(prison)s has moved your video call to a new time.")
                % {"prison": establishment.name}
            ]
        else:
            paragraphs = [_("You have moved your video call to a new time.")]
        if previous_starts_at is not None:
            previous_end = previous_starts_at + (booking.ends_at - booking.starts_at)
            rows.insert(
                2,
                (_("Was"), _when(booking, previous_starts_at, previous_end)),
            )
            rows[3] = (_("Now"), rows[3][1])
        if reason:
            rows.append((_("Reason"), reason))
    elif kind == REMINDER_24H:
        paragraphs = [_("This is a reminder that your video call is tomorrow.")]
    else:
        paragraphs = [_("This is a reminder that your video call starts in about an hour.")]
    if kind != CANCELLED:
        after.append(
            _(
                "Everyone on your camera must be approved for this call. If someone else "
                "appears, the call pauses until they leave."
            )
        )
    return BookingEmail(
        # A prisoner's name is typed in admin: one line in the subject whatever it holds.
        subject=one_line(_(SUBJECTS[kind]).format(prisoner=prisoner.full_name)),
        greeting=_("Hello %(name)s,") % {"name": booking.lead_visitor.legal_name},
        paragraphs=paragraphs,
        rows=rows,
        action=action,
        after=after,
    )


def build_booking_email(
    booking: Booking,
    kind: str,
    *,
    previous_starts_at: datetime | None = None,
    reason: str = "",
) -> EmailMultiAlternatives:
    """The email in the lead visitor's language (their profile's), .ics included."""
    with translation.override(booking.lead_visitor.language):
        content = booking_email_content(
            booking, kind, previous_starts_at=previous_starts_at, reason=reason
        )
        context = {"email": content, "SERVICE_NAME": settings.SERVICE_NAME}
        people = _attendees(booking)
        message = EmailMultiAlternatives(
            subject=content.subject,
            body=render_to_string("bookings/email/booking.txt", context),
            to=recipients(booking, people),
        )
        message.attach_alternative(
            render_to_string("bookings/email/booking.html", context), "text/html"
        )
        if kind in CALENDAR_KINDS and booking.cancel_reason not in NEVER_IN_A_CALENDAR:
            message.attach(calendar_part(booking, people))
    return message
