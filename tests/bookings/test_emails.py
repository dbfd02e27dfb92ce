"""Every booking email (issue 14, item 7): a branded plain-text and HTML part saying the
same, links to SITE_URL, the reason where there is one, and an invitation calendars
understand (RFC 5546: METHOD, ORGANIZER, ATTENDEE, a stable UID, a rising SEQUENCE, the
method on the MIME part too). Also the account emails allauth sends."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.urls import reverse

from bookings import notifications, services
from bookings.models import Booking
from bookings.tasks import send_booking_email
from tests import factories
from tests.bookings.conftest import uk
from tests.bookings.mail_parts import (
    calendar_of,
    has_calendar,
    html_of,
    links,
    same_words,
    visible,
)

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)
SITE = "https://visits.example.org"


@pytest.fixture(autouse=True)
def _site_url(settings) -> None:  # type: ignore[no-untyped-def]
    settings.BOOKINGS_SITE_URL = SITE + "/"
    settings.DEFAULT_FROM_EMAIL = "Purple Visits <no-reply@visits.example.org>"


def book(world, starts_at=None):  # type: ignore[no-untyped-def]
    return services.booking_create(
        connection=world.connection,
        lead=world.profile,
        starts_at=starts_at or uk(WED, 9, 30),
        aup_accepted=True,
    )


def assert_well_formed(message) -> None:  # type: ignore[no-untyped-def]
    """Text and HTML carry the same words; the HTML is branded, styled inline, loads
    nothing; every link is to the site."""
    text_words, html_words = same_words(message)
    assert text_words == html_words
    assert text_words[:2] == ["Purple", "Visits"]  # the brand, in both
    html = html_of(message)
    assert "<style" not in html and "<link" not in html and "<img" not in html
    assert "url(" not in html and "@import" not in html
    assert 'style="' in html
    hrefs = visible(html).hrefs
    assert hrefs and all(href.startswith(SITE + "/") for href in hrefs)
    assert links(message.body) and all(url.startswith(SITE + "/") for url in links(message.body))
    assert set(links(message.body)) == set(hrefs)
    assert "127.0.0.1" not in message.body + html and "//" not in message.body.replace(
        "https://", ""
    )
    message.message()  # the whole email builds


def test_every_kind_of_booking_email_has_the_same_text_and_html(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    services.booking_move_by_family(booking=booking, lead=world.profile, starts_at=uk(WED, 10, 15))
    services.booking_move(
        booking=booking,
        starts_at=uk(date(2026, 11, 5), 9, 30),
        actor=people.visits_admin_x,
        reason="staff_shortage",
    )
    booking.refresh_from_db()
    for kind in (notifications.REMINDER_24H, notifications.REMINDER_1H):
        notifications.build_booking_email(booking, kind).send()
    services.booking_cancel_by_staff(
        booking=booking, actor=people.visits_admin_x, reason="lockdown", note="Search"
    )
    request = services.booking_request_create(
        connection=world.connection, starts_at=uk(date(2026, 11, 9), 9, 30), actor=None
    )
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 7, subjects
    for message in mail.outbox:
        assert_well_formed(message)
    confirmed, family_move, staff_move, day_before, hour_before, cancelled, requested = mail.outbox
    assert "/visits/call/" in confirmed.body and str(booking.reference) in confirmed.body
    assert f"{SITE}{reverse('bookings:respond', args=[request.reference])}" in requested.body
    assert f"{SITE}{reverse('bookings:my_bookings')}" in cancelled.body
    # The reason where there is one.
    assert "Reason: Staff shortage" in staff_move.body
    assert "Reason: Lockdown – Search" in cancelled.body
    assert "Reason" not in family_move.body and "Reason" not in confirmed.body
    # The calendar with the emails that change the family's calendar, not the others.
    assert [has_calendar(m) for m in mail.outbox] == [True, True, True, True, False, True, False]
    del day_before, hour_before


def test_the_invitation_follows_the_booking_confirm_move_cancel(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    services.booking_move_by_family(booking=booking, lead=world.profile, starts_at=uk(WED, 10, 15))
    services.booking_move(
        booking=booking,
        starts_at=uk(date(2026, 11, 5), 11, 0),
        actor=people.visits_admin_x,
        reason="technical_fault",
    )
    services.booking_cancel_by_family(booking=booking, lead=world.profile)
    seen = []
    for message in mail.outbox:
        part, calendar = calendar_of(message)
        (event,) = calendar.walk("VEVENT")
        method = str(calendar["method"])
        # The method on the MIME part too (RFC 6047), as calendar apps read it.
        assert part.get_content_type() == "text/calendar"
        assert part.get_param("method") == method
        assert part.get_content_charset() == "utf-8"
        assert part.get_filename() == "video-call.ics"
        organizer = event["organizer"]
        assert str(organizer) == "mailto:no-reply@visits.example.org"
        assert organizer.params["CN"] == "HMP Xanadu"
        attendees = event["attendee"]
        attendees = attendees if isinstance(attendees, list) else [attendees]
        assert str(attendees[0]) == "mailto:jo.jones@example.test"
        assert attendees[0].params["CN"] == "Jo Jones"
        assert attendees[0].params["RSVP"] == "FALSE"
        seen.append(
            (
                method,
                str(event["uid"]),
                int(event["sequence"]),
                event.decoded("dtstart"),
                str(event["status"]),
                str(event["description"]),
            )
        )
    methods, uids, sequences, starts, statuses, descriptions = zip(*seen, strict=True)
    assert methods == ("REQUEST", "REQUEST", "REQUEST", "CANCEL")
    assert set(uids) == {f"{booking.reference}@purplevisits"}  # one event all along
    assert sequences == (0, 1, 2, 3)  # rising on each change
    assert starts[:3] == (uk(WED, 9, 30), uk(WED, 10, 15), uk(date(2026, 11, 5), 11, 0))
    assert starts[3] == starts[2]  # the cancellation names the event's last time
    assert statuses == ("CONFIRMED", "CONFIRMED", "CONFIRMED", "CANCELLED")
    assert descriptions[0].startswith("Join from your calls page")
    assert "cancelled" in descriptions[3] and "Join" not in descriptions[3]
    assert "Reason: Cancelled by the family" in descriptions[3]


def test_the_sequence_is_stored_and_the_download_is_published(client, world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    services.booking_move_by_family(booking=booking, lead=world.profile, starts_at=uk(WED, 10, 15))
    assert Booking.objects.get(pk=booking.pk).calendar_sequence == 1
    client.force_login(world.user)
    response = client.get(reverse("bookings:calendar", args=[booking.reference]))
    from icalendar import Calendar

    calendar = Calendar.from_ical(response.content)
    assert str(calendar["method"]) == "PUBLISH"
    (event,) = calendar.walk("VEVENT")
    assert int(event["sequence"]) == 1
    assert str(event["uid"]) == f"{booking.reference}@purplevisits"


def test_a_declined_request_sends_no_calendar_cancellation(world) -> None:  # type: ignore[no-untyped-def]
    """The family never had the call in a calendar: a CANCEL would only puzzle."""
    request = services.booking_request_create(
        connection=world.connection, starts_at=uk(date(2026, 11, 9), 9, 30), actor=None
    )
    services.booking_request_decline(booking=request, lead=world.profile)
    assert len(mail.outbox) == 2
    assert not has_calendar(mail.outbox[-1])
    assert "cancelled" in mail.outbox[-1].subject


def test_a_queued_move_email_of_a_call_cancelled_since_is_not_sent(world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    services.booking_cancel_by_family(booking=booking, lead=world.profile)
    mail.outbox.clear()
    assert send_booking_email(booking.pk, notifications.MOVED, uk(WED, 9, 30).isoformat()) is False
    assert send_booking_email(booking.pk, notifications.CANCELLED) is True
    assert len(mail.outbox) == 1


def test_the_move_email_task_takes_the_old_time_as_text(world) -> None:  # type: ignore[no-untyped-def]
    """The worker gets JSON: the old time as ISO 8601, read back; nonsense is left out."""
    booking = book(world)
    mail.outbox.clear()
    send_booking_email(booking.pk, notifications.MOVED, "2026-11-03T09:30:00+00:00", "Lockdown")
    assert "Was: Tuesday 3 November 2026, 09:30 to 10:00 (UK time)" in mail.outbox[-1].body
    assert "Reason: Lockdown" in mail.outbox[-1].body
    send_booking_email(booking.pk, notifications.MOVED, "not a time", "")
    assert "Was:" not in mail.outbox[-1].body


def test_other_adults_on_the_call_are_attendees_too(world) -> None:  # type: ignore[no-untyped-def]
    from tests.bookings.conftest import in_group

    member = in_group(world.profile, factories.ConnectionFactory(prisoner=world.prisoner).visitor)
    services.booking_create(
        connection=world.connection,
        lead=world.profile,
        starts_at=uk(WED, 9, 30),
        profile_ids=[member.pk],
        aup_accepted=True,
    )
    _part, calendar = calendar_of(mail.outbox[-1])
    (event,) = calendar.walk("VEVENT")
    assert [str(a) for a in event["attendee"]] == [
        "mailto:jo.jones@example.test",
        f"mailto:{member.user.email}",
    ]


def test_a_name_with_a_line_break_stays_one_line_in_the_calendar(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.name = "HMP Two\nLines"
    world.establishment.save()
    book(world)
    _part, calendar = calendar_of(mail.outbox[-1])
    (event,) = calendar.walk("VEVENT")
    assert event["organizer"].params["CN"] == "HMP Two Lines"


# --- allauth's emails -------------------------------------------------------------------


def test_the_sign_up_confirmation_email_is_the_sites_own(client, settings) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new.family@example.test",
            "password1": "a-long-enough-passphrase-91",
            "password2": "a-long-enough-passphrase-91",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (message,) = mail.outbox
    assert message.subject == "[Purple Visits] Confirm your email address"
    body = message.body
    assert "Hello from" not in body and "127.0.0.1:8103" not in body
    assert "has given your email" not in body and "user " not in body
    assert "Confirm your email address to finish setting up the account:" in body
    text_words, html_words = same_words(message)
    assert text_words == html_words and text_words[:2] == ["Purple", "Visits"]
    (url,) = links(body)
    assert "/accounts/confirm-email/" in url and visible(html_of(message)).hrefs == [url, url]
    html = html_of(message)
    assert "<img" not in html and "<style" not in html


def test_the_password_reset_email_is_the_sites_own(client, world) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("account_reset_password"), {"email": world.user.email})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject == "[Purple Visits] Choose a new password"
    assert world.user.username not in message.body  # no usernames
    assert "Hello from" not in message.body
    text_words, html_words = same_words(message)
    assert text_words == html_words
    (url,) = links(message.body)
    assert "/accounts/password/reset/key/" in url


def test_a_reset_for_an_unknown_address_is_the_sites_own(client) -> None:  # type: ignore[no-untyped-def]
    client.post(reverse("account_reset_password"), {"email": "nobody@example.test"})
    (message,) = mail.outbox
    assert message.subject == "[Purple Visits] There is no account with this email address"
    text_words, html_words = same_words(message)
    assert text_words == html_words
    assert re.search(r"/accounts/signup/", message.body)


def test_every_allauth_text_email_gets_the_brand(settings) -> None:  # type: ignore[no-untyped-def]
    """Emails not written out here (e.g. a security notice) still come on the site's
    base: no "Hello from <host>!"."""
    from django.template.loader import render_to_string

    text = render_to_string(
        "account/email/password_changed_message.txt",
        {"ip": "192.0.2.1", "user_agent": "Firefox", "timestamp": timedelta(0)},
    )
    assert text.startswith("Purple Visits") and "Hello from" not in text
    assert "Please do not reply to this email" in text
