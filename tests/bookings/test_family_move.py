"""A family moves their own call (issue 14, item 5): the rules of a new booking, one
transaction, the allowance unchanged; and staff moves say the old time and the reason.

Races against PostgreSQL are in test_concurrency.py."""

from __future__ import annotations

from datetime import date

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from bookings import services
from bookings.models import Booking, BookingStatus, BookingVisitor
from bookings.rules import BookingRefused
from establishments.models import BlockedDate, RequestMode
from identity.models import ConnectionStatus, ReviewStatus
from tests import factories
from tests.bookings.conftest import fill_slot, in_group, uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)
THU = date(2026, 11, 5)
NEW_SLOT = "2026-11-05T10:15:00Z"  # Thursday 10:15 UK time (GMT)


def book(world, starts_at=None, **kwargs):  # type: ignore[no-untyped-def]
    return services.booking_create(
        connection=world.connection,
        lead=world.profile,
        starts_at=starts_at or uk(WED, 9, 30),
        aup_accepted=True,
        **kwargs,
    )


def move(world, booking, starts_at, lead=None):  # type: ignore[no-untyped-def]
    return services.booking_move_by_family(
        booking=booking, lead=lead or world.profile, starts_at=starts_at
    )


def refused_move(code: str, world, booking, starts_at, lead=None) -> BookingRefused:  # type: ignore[no-untyped-def]
    before = Booking.objects.get(pk=booking.pk)
    emails = len(mail.outbox)
    with pytest.raises(BookingRefused) as caught:
        move(world, booking, starts_at, lead=lead)
    assert caught.value.code == code, caught.value.message
    after = Booking.objects.get(pk=booking.pk)
    # Nothing written: same time, laptop, month, sequence; no email.
    assert (after.starts_at, after.terminal_id, after.allowance_month, after.calendar_sequence) == (
        before.starts_at,
        before.terminal_id,
        before.allowance_month,
        before.calendar_sequence,
    )
    assert len(mail.outbox) == emails
    return caught.value


# --- The service ----------------------------------------------------------------------


def test_a_family_moves_their_call_keeping_people_reference_and_allowance(world) -> None:  # type: ignore[no-untyped-def]
    dependant = factories.DependantFactory(lead_visitor=world.profile)
    booking = book(world, dependant_ids=[dependant.pk])
    reference, short = booking.reference, booking.short_reference
    moved = move(world, booking, uk(THU, 10, 15))
    assert moved.pk == booking.pk and Booking.objects.count() == 1
    assert (moved.starts_at, moved.ends_at) == (uk(THU, 10, 15), uk(THU, 10, 45))
    assert moved.terminal_free_at == uk(THU, 11, 0)  # with the changeover
    assert moved.status == BookingStatus.CONFIRMED
    assert (moved.reference, moved.short_reference) == (reference, short)
    assert moved.allowance_month == date(2026, 11, 1)
    assert moved.aup_accepted_at is not None and moved.calendar_sequence == 1
    assert set(
        BookingVisitor.objects.filter(booking=moved).values_list("dependant", flat=True)
    ) == {
        None,
        dependant.pk,
    }
    # The month's one call is still this one: another booking in November is refused.
    with pytest.raises(BookingRefused) as caught:
        book(world, uk(date(2026, 11, 20), 9, 30))
    assert caught.value.code == "NO_ALLOWANCE"
    # The email says the old time; a family move gives no reason and no audit entry.
    message = mail.outbox[-1]
    assert "has moved" in message.subject
    assert "You have moved your video call to a new time." in message.body
    assert "Was: Wednesday 4 November 2026, 09:30 to 10:00 (UK time)" in message.body
    assert "Now: Thursday 5 November 2026, 10:15 to 10:45 (UK time)" in message.body
    assert "Reason:" not in message.body
    assert not AuditEntry.objects.filter(action=AuditAction.BOOKING_MOVE).exists()


def test_moving_into_another_month_counts_there_instead(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    booking = book(world)
    moved = move(world, booking, uk(date(2026, 12, 2), 9, 30))
    assert moved.allowance_month == date(2026, 12, 1)
    # November's call is free again, December's is used by the move.
    assert book(world, uk(date(2026, 11, 20), 9, 30)).status == BookingStatus.CONFIRMED
    with pytest.raises(BookingRefused) as caught:
        book(world, uk(date(2026, 12, 3), 9, 30))
    assert caught.value.code == "NO_ALLOWANCE"


def test_a_move_into_a_month_with_no_call_left_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    booking = book(world)
    factories.BookingFactory(
        connection=factories.ConnectionFactory(prisoner=world.prisoner),
        terminal=world.terminals[0],
        starts_at=uk(date(2026, 12, 7), 9, 30),
    )
    refused_move("NO_ALLOWANCE", world, booking, uk(date(2026, 12, 2), 9, 30))


def test_a_move_keeps_the_rules_of_a_booking(world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    # The families' notice (tomorrow is too soon, though staff could move it there).
    refused_move("OUTSIDE_WINDOW", world, booking, uk(date(2026, 11, 3), 9, 30))
    refused_move("OUTSIDE_WINDOW", world, booking, uk(date(2026, 12, 31), 9, 30))
    refused_move("SLOT_NOT_OFFERED", world, booking, uk(THU, 10, 0))
    refused_move("SLOT_NOT_OFFERED", world, booking, uk(WED, 9, 30))  # where it already is
    BlockedDate.objects.create(establishment=world.establishment, date=THU, reason="lockdown")
    refused_move("DATE_BLOCKED", world, booking, uk(THU, 10, 15))
    world.prisoner.video_calls_restricted_until = date(2026, 11, 9)
    world.prisoner.save()
    refused_move("PRISONER_UNAVAILABLE", world, booking, uk(date(2026, 11, 9), 9, 30))


def test_a_move_to_a_full_slot_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    fill_slot(world, uk(THU, 10, 15))
    refused_move("SLOT_FULL", world, booking, uk(THU, 10, 15))


def test_a_move_frees_its_own_laptop_for_the_next_slot(world) -> None:  # type: ignore[no-untyped-def]
    """One laptop: the call at 09:30 holds it until 10:15 (changeover); moving the call
    to 10:15 is possible because the move does not count the call itself."""
    world.terminals[1].is_active = False
    world.terminals[1].save()
    booking = book(world)
    assert move(world, booking, uk(WED, 10, 15)).starts_at == uk(WED, 10, 15)


def test_only_the_lead_moves_and_only_a_confirmed_call_to_come(world, time_machine) -> None:  # type: ignore[no-untyped-def]
    member = in_group(
        world.profile,
        factories.ConnectionFactory(prisoner=world.prisoner).visitor,
    )
    booking = book(world, profile_ids=[member.pk])
    error = refused_move("NOT_CHANGEABLE", world, booking, uk(THU, 10, 15), lead=member)
    assert "Only the person who booked" in error.message
    stranger = factories.ConnectionFactory(prisoner=world.prisoner).visitor
    refused_move("NOT_CHANGEABLE", world, booking, uk(THU, 10, 15), lead=stranger)
    request = factories.BookingFactory(
        connection=world.connection,
        terminal=world.terminals[1],
        starts_at=uk(date(2026, 11, 10), 9, 30),
        status=BookingStatus.REQUESTED,
    )
    refused_move("NOT_CHANGEABLE", world, request, uk(date(2026, 11, 11), 9, 30))
    services.booking_cancel_by_family(booking=booking, lead=world.profile)
    refused_move("NOT_CHANGEABLE", world, booking, uk(THU, 10, 15))
    started = factories.BookingFactory(
        connection=world.connection, terminal=world.terminals[0], starts_at=uk(THU, 9, 30)
    )
    time_machine.move_to(uk(THU, 9, 31), tick=False)
    refused_move("NOT_CHANGEABLE", world, started, uk(date(2026, 11, 20), 9, 30))


def test_a_move_checks_the_people_on_the_call_again(world) -> None:  # type: ignore[no-untyped-def]
    dependant = factories.DependantFactory(lead_visitor=world.profile)
    booking = book(world, dependant_ids=[dependant.pk])
    dependant.status = ReviewStatus.REJECTED
    dependant.save()
    refused_move("VISITOR_NOT_APPROVED", world, booking, uk(THU, 10, 15))
    world.connection.status = ConnectionStatus.REVOKED
    world.connection.save()
    refused_move("VISITOR_NOT_APPROVED", world, booking, uk(THU, 10, 15))


def test_no_family_move_where_the_prisoner_asks_for_calls(world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    refused_move("REQUESTS_ONLY", world, booking, uk(THU, 10, 15))


def test_a_move_that_lost_to_a_change_meanwhile_is_refused_not_undone(world) -> None:  # type: ignore[no-untyped-def]
    """The second tab read the call at its old time; the first tab moved it. The second
    move must not move it again from where it no longer is (the conditional update)."""
    booking = book(world)
    stale = Booking.objects.get(pk=booking.pk)
    move(world, booking, uk(THU, 10, 15))
    original = services._booking_to_move
    # As if the second tab's read came before the first tab's commit.
    services._booking_to_move = lambda b: stale if b.pk == stale.pk else original(b)  # type: ignore[assignment]
    try:
        with pytest.raises(BookingRefused) as caught:
            move(world, stale, uk(date(2026, 11, 9), 9, 30))
    finally:
        services._booking_to_move = original  # type: ignore[assignment]
    assert caught.value.code == "NOT_CHANGEABLE"
    assert Booking.objects.get(pk=booking.pk).starts_at == uk(THU, 10, 15)


# --- Staff moves ----------------------------------------------------------------------


def test_a_staff_move_needs_a_reason_and_says_the_old_time_and_why(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    for reason, note in (("", ""), ("made_up", ""), ("other", "  ")):
        with pytest.raises(ValidationError):
            services.booking_move(
                booking=booking,
                starts_at=uk(THU, 10, 15),
                actor=people.visits_admin_x,
                reason=reason,
                note=note,
            )
    assert Booking.objects.get(pk=booking.pk).starts_at == uk(WED, 9, 30)
    services.booking_move(
        booking=booking,
        starts_at=uk(THU, 10, 15),
        actor=people.visits_admin_x,
        reason="technical_fault",
        note="Laptop 1 is being repaired",
    )
    message = mail.outbox[-1]
    assert "HMP Xanadu has moved your video call to a new time." in message.body
    assert "Was: Wednesday 4 November 2026, 09:30 to 10:00 (UK time)" in message.body
    assert "Now: Thursday 5 November 2026, 10:15 to 10:45 (UK time)" in message.body
    assert "Reason: Technical fault – Laptop 1 is being repaired" in message.body
    entry = AuditEntry.objects.get(action=AuditAction.BOOKING_MOVE)
    assert entry.actor == people.visits_admin_x
    assert entry.reason == "Technical fault: Laptop 1 is being repaired"
    assert entry.detail["from"] == uk(WED, 9, 30).isoformat()
    assert entry.detail["to"] == uk(THU, 10, 15).isoformat()


def test_the_staff_move_page_asks_for_the_reason(client, world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    client.force_login(people.visits_admin_x)
    url = reverse("bookings:staff_move", args=[world.establishment.code, booking.reference])
    page = client.get(url).content.decode()
    assert 'name="reason"' in page and "Staff shortage" in page and 'name="note"' in page
    response = client.post(url, {"slot": NEW_SLOT, "reason": ""})
    assert response.status_code == 400
    assert Booking.objects.get(pk=booking.pk).starts_at == uk(WED, 9, 30)
    response = client.post(url, {"slot": NEW_SLOT, "reason": "prisoner_unavailable"})
    assert response.status_code == 302
    assert "Reason: The person in prison cannot make that time" in mail.outbox[-1].body


# --- The pages ------------------------------------------------------------------------


def test_change_the_time_from_the_call_page_through_the_portal(client, world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    client.force_login(world.user)
    detail = client.get(reverse("bookings:detail", args=[booking.reference])).content.decode()
    portal = reverse("bookings:portal", args=[world.establishment.code])
    assert f'href="{portal}?move={booking.reference}"' in detail
    # The move URL without a time sends the family to the portal's list for it.
    response = client.get(reverse("bookings:move", args=[booking.reference]))
    assert (
        response.status_code == 302 and response["Location"] == f"{portal}?move={booking.reference}"
    )
    page = client.get(portal, {"move": str(booking.reference)}).content.decode()
    assert "Change the time of your call" in page
    assert f'action="{reverse("bookings:move", args=[booking.reference])}"' in page
    # Marked for the move: its own time says so; the other times of November are
    # bookable (the call's own allowance is not counted twice); no connection field.
    assert 'data-slot-unavailable="2026-11-04T09:30:00Z"' in page
    assert "your call is at this time now" in page
    assert f'value="{NEW_SLOT}"' in page
    assert "is used" not in page
    assert 'name="connection"' not in page
    # Confirm page, then the move.
    url = reverse("bookings:move", args=[booking.reference])
    confirm = client.get(url, {"slot": NEW_SLOT})
    assert confirm.status_code == 200
    content = confirm.content.decode()
    assert "Wednesday 4 November 2026, 09:30" in content
    assert "Thursday 5 November 2026, 10:15" in content
    response = client.post(url, {"slot": NEW_SLOT})
    assert response.status_code == 302
    assert response["Location"] == reverse("bookings:detail", args=[booking.reference])
    booking.refresh_from_db()
    assert booking.starts_at == uk(THU, 10, 15)
    assert len(mail.outbox) == 2 and "has moved" in mail.outbox[-1].subject
    # A second click of the same form: the call is already there, which is the answer.
    again = client.post(url, {"slot": NEW_SLOT})
    assert again.status_code == 302 and len(mail.outbox) == 2


def test_the_portal_without_the_move_marks_the_month_used(client, world) -> None:  # type: ignore[no-untyped-def]
    """The control for the marking above: the same page, not moving, says November's
    call is used (so the move's marking is what made those times bookable)."""
    book(world)
    client.force_login(world.user)
    page = client.get(reverse("bookings:portal", args=[world.establishment.code])).content.decode()
    assert "is used" in page and "you already have a call then" in page


def test_the_confirm_page_refuses_what_the_move_would(client, world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    fill_slot(world, uk(THU, 10, 15))
    client.force_login(world.user)
    url = reverse("bookings:move", args=[booking.reference])
    response = client.get(url, {"slot": NEW_SLOT})
    assert response.status_code == 409
    assert 'data-code="SLOT_FULL"' in response.content.decode()
    assert "Move the call</button>" not in response.content.decode()
    assert client.post(url, {"slot": NEW_SLOT}).status_code == 409
    assert client.get(url, {"slot": "nonsense"}).status_code == 400
    assert Booking.objects.get(pk=booking.pk).starts_at == uk(WED, 9, 30)


def test_nobody_else_can_move_a_call(client, world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    other = factories.ConnectionFactory(prisoner=world.prisoner)
    client.force_login(other.visitor.user)
    url = reverse("bookings:move", args=[booking.reference])
    assert client.get(url, {"slot": NEW_SLOT}).status_code == 404
    assert client.post(url, {"slot": NEW_SLOT}).status_code == 404
    # Another family's reference in ?move= is ignored: their own portal, not a move.
    page = client.get(
        reverse("bookings:portal", args=[world.establishment.code]),
        {"move": str(booking.reference)},
    ).content.decode()
    assert "Change the time of your call" not in page
    assert Booking.objects.get(pk=booking.pk).starts_at == uk(WED, 9, 30)
