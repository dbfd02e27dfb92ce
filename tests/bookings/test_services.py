from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail

from audit.models import AuditAction, AuditEntry
from bookings import services
from bookings.models import Booking, BookingStatus, BookingVisitor, CancelReason
from bookings.rules import BookingRefused
from establishments.models import BlockedDate, PrisonerStatus, RequestMode, RolloutStage
from identity.models import ConnectionStatus, ReviewStatus, VerificationStatus
from tests import factories
from tests.bookings.conftest import fill_slot, in_group, uk
from tests.bookings.mail_parts import calendar_of

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)


def book(world, starts_at=None, **kwargs):  # type: ignore[no-untyped-def]
    params = {
        "connection": world.connection,
        "lead": world.profile,
        "starts_at": starts_at or uk(WED, 9, 30),
        "aup_accepted": True,
    }
    params.update(kwargs)
    return services.booking_create(**params)


def refused(code: str, world, **kwargs) -> BookingRefused:  # type: ignore[no-untyped-def]
    before = Booking.objects.count(), BookingVisitor.objects.count()
    with pytest.raises(BookingRefused) as caught:
        book(world, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert (Booking.objects.count(), BookingVisitor.objects.count()) == before
    return caught.value


def test_a_family_books_a_call_and_gets_an_email_with_a_valid_ics(world) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.terminal in world.terminals
    assert booking.ends_at - booking.starts_at == timedelta(minutes=30)
    assert booking.allowance_month == date(2026, 11, 1)
    assert booking.aup_accepted_at is not None
    assert list(booking.visitors.values_list("profile", flat=True)) == [world.profile.pk]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["jo.jones@example.test"]
    assert "Wednesday 4 November 2026, 09:30 to 10:00" in message.body
    part, calendar = calendar_of(message)
    assert part.get_filename().endswith(".ics")
    assert part["Content-Type"] == 'text/calendar; charset="utf-8"; method="REQUEST"'
    event = calendar.walk("VEVENT")[0]
    assert event["uid"] == f"{booking.reference}@purplevisits"
    assert event.decoded("dtstart") == uk(WED, 9, 30)
    assert event.decoded("dtend") == uk(WED, 10, 0)
    assert "A1234BC" in str(event["summary"])


def test_establishment_not_live(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.rollout_stage = RolloutStage.TEST_CALLS
    world.establishment.save()
    refused("ESTABLISHMENT_NOT_LIVE", world)


def test_prisoner_released_or_moved_is_unavailable(world) -> None:  # type: ignore[no-untyped-def]
    world.prisoner.status = PrisonerStatus.RELEASED
    world.prisoner.save()
    refused("PRISONER_UNAVAILABLE", world)
    world.prisoner.status = PrisonerStatus.ACTIVE
    world.prisoner.establishment = factories.EstablishmentFactory()
    world.prisoner.save()
    refused("PRISONER_UNAVAILABLE", world, establishment=world.establishment)


def test_prisoner_restricted_until_a_date(world) -> None:  # type: ignore[no-untyped-def]
    world.prisoner.video_calls_restricted_until = WED
    world.prisoner.save()
    error = refused("PRISONER_UNAVAILABLE", world)
    assert "until 5 November" in error.message
    assert book(world, starts_at=uk(WED + timedelta(days=1), 9, 30)).status == "confirmed"


def test_no_allowance_says_when_the_next_call_can_be(world) -> None:  # type: ignore[no-untyped-def]
    book(world)
    error = refused("NO_ALLOWANCE", world, starts_at=uk(date(2026, 11, 20), 10, 15))
    # The window ends 30 November: December comes into it tomorrow (28 days ahead), not
    # "any day from 1 December" as if that could be booked now (issue 14).
    assert "Calls in December can be booked from 3 November" in error.message
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    error = refused("NO_ALLOWANCE", world, starts_at=uk(date(2026, 11, 20), 10, 15))
    assert "Your next call with A1234BC can be booked for any day from 1 December" in error.message
    # Another month has its own allowance.
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    december = book(world, starts_at=uk(date(2026, 12, 2), 9, 30))
    assert december.allowance_month == date(2026, 12, 1)


def test_allowance_is_per_prisoner_whoever_books(world) -> None:  # type: ignore[no-untyped-def]
    book(world)
    other = factories.ConnectionFactory(prisoner=world.prisoner)
    with pytest.raises(BookingRefused) as caught:
        services.booking_create(
            connection=other,
            lead=other.visitor,
            starts_at=uk(date(2026, 11, 9), 9, 30),
            aup_accepted=True,
        )
    assert caught.value.code == "NO_ALLOWANCE"


def test_cancelling_gives_the_allowance_back(world) -> None:  # type: ignore[no-untyped-def]
    first = book(world)
    services.booking_cancel_by_family(booking=first, lead=world.profile)
    first.refresh_from_db()
    assert first.status == BookingStatus.CANCELLED and first.cancel_reason == CancelReason.FAMILY
    assert "cancelled" in mail.outbox[-1].subject
    again = book(world, starts_at=uk(date(2026, 11, 9), 10, 15))
    assert again.status == BookingStatus.CONFIRMED


def test_family_cannot_cancel_once_the_call_started(world, time_machine) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    time_machine.move_to(uk(WED, 9, 31), tick=False)
    with pytest.raises(BookingRefused) as caught:
        services.booking_cancel_by_family(booking=booking, lead=world.profile)
    assert caught.value.code == "NOT_CHANGEABLE"
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


@pytest.mark.parametrize(
    "starts_at",
    [
        uk(date(2026, 11, 3), 9, 30),  # inside the minimum notice
        uk(date(2026, 12, 1), 9, 30),  # beyond 28 days
        uk(date(2026, 10, 30), 9, 30),  # in the past
    ],
)
def test_outside_window(world, starts_at) -> None:  # type: ignore[no-untyped-def]
    refused("OUTSIDE_WINDOW", world, starts_at=starts_at)


def test_date_blocked(world) -> None:  # type: ignore[no-untyped-def]
    factories.BlockedDateFactory(establishment=world.establishment, date=WED)
    refused("DATE_BLOCKED", world)


def test_slot_not_offered(world) -> None:  # type: ignore[no-untyped-def]
    refused("SLOT_NOT_OFFERED", world, starts_at=uk(WED, 9, 45))
    refused("SLOT_NOT_OFFERED", world, starts_at=uk(WED, 15, 0))


def test_slot_full_when_every_terminal_is_booked(world) -> None:  # type: ignore[no-untyped-def]
    fill_slot(world, uk(WED, 9, 30))
    refused("SLOT_FULL", world)
    # An inactive terminal gives no capacity either.
    world.terminals[0].is_active = False
    world.terminals[0].save()
    Booking.objects.filter(terminal=world.terminals[0]).update(status=BookingStatus.CANCELLED)
    refused("SLOT_FULL", world)


def test_visitor_not_approved_lead(world) -> None:  # type: ignore[no-untyped-def]
    world.profile.verification_status = VerificationStatus.SUBMITTED
    world.profile.save()
    refused("VISITOR_NOT_APPROVED", world)


def test_visitor_not_approved_connection(world) -> None:  # type: ignore[no-untyped-def]
    world.connection.status = ConnectionStatus.PENDING
    world.connection.save()
    refused("VISITOR_NOT_APPROVED", world)


def test_another_familys_connection_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    stranger = factories.VisitorProfileFactory()
    refused("VISITOR_NOT_APPROVED", world, lead=stranger)


def test_companions_must_be_approved_for_this_prisoner(world) -> None:  # type: ignore[no-untyped-def]
    unapproved = factories.ConnectionFactory(
        prisoner=world.prisoner, status=ConnectionStatus.PENDING
    ).visitor
    refused("VISITOR_NOT_APPROVED", world, profile_ids=[unapproved.pk])
    unconnected = factories.VisitorProfileFactory()
    refused("VISITOR_NOT_APPROVED", world, profile_ids=[unconnected.pk])
    pending_child = factories.DependantFactory(
        lead_visitor=world.profile, status=ReviewStatus.PENDING
    )
    refused("VISITOR_NOT_APPROVED", world, dependant_ids=[pending_child.pk])
    someone_elses_child = factories.DependantFactory()
    refused("VISITOR_NOT_APPROVED", world, dependant_ids=[someone_elses_child.pk])
    refused("VISITOR_NOT_APPROVED", world, dependant_ids=[999999])


def test_approved_companions_join(world) -> None:  # type: ignore[no-untyped-def]
    other = in_group(world.profile, factories.ConnectionFactory(prisoner=world.prisoner).visitor)
    child = factories.DependantFactory(lead_visitor=world.profile)
    booking = book(world, profile_ids=[other.pk], dependant_ids=[child.pk])
    assert booking.visitors.count() == 3
    assert set(mail.outbox[0].to) == {world.user.email, other.user.email}


def test_too_many_visitors(world) -> None:  # type: ignore[no-untyped-def]
    children = [factories.DependantFactory(lead_visitor=world.profile) for _ in range(3)]
    refused("TOO_MANY_VISITORS", world, dependant_ids=[c.pk for c in children])
    world.establishment.max_adults = 1
    world.establishment.save()
    adult = in_group(world.profile, factories.ConnectionFactory(prisoner=world.prisoner).visitor)
    refused("TOO_MANY_VISITORS", world, profile_ids=[adult.pk])


def test_no_adult(world) -> None:  # type: ignore[no-untyped-def]
    world.profile.date_of_birth = date(2009, 1, 1)  # 17 on the day
    world.profile.save()
    refused("NO_ADULT", world)


def test_already_booked_at_that_time(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.calls_per_month = 4
    world.establishment.save()
    book(world)
    other = factories.ConnectionFactory(prisoner=world.prisoner)
    with pytest.raises(BookingRefused) as caught:
        services.booking_create(
            connection=other, lead=other.visitor, starts_at=uk(WED, 9, 30), aup_accepted=True
        )
    assert caught.value.code == "ALREADY_BOOKED"


def test_policy_must_be_accepted(world) -> None:  # type: ignore[no-untyped-def]
    refused("AUP_NOT_ACCEPTED", world, aup_accepted=False)


def test_family_cannot_book_where_prisoners_request(world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    refused("REQUESTS_ONLY", world)


def test_same_idempotency_key_returns_the_same_booking(world) -> None:  # type: ignore[no-untyped-def]
    key = "k" * 32
    first = book(world, idempotency_key=key)
    second = book(world, idempotency_key=key)
    assert first.pk == second.pk
    assert Booking.objects.count() == 1
    assert len(mail.outbox) == 1
    # Another family replaying the key learns nothing and books nothing.
    stranger = factories.ConnectionFactory()
    with pytest.raises(BookingRefused):
        services.booking_create(
            connection=stranger,
            lead=stranger.visitor,
            starts_at=uk(WED, 10, 15),
            aup_accepted=True,
            idempotency_key=key,
        )


@pytest.mark.parametrize("change", ["date_blocked", "establishment_closed", "time_passed"])
def test_a_form_sent_again_later_still_returns_its_booking(world, change, time_machine) -> None:  # type: ignore[no-untyped-def]
    """The key is looked up when the booking is refused, whatever refused it: a form
    sent again after the slot was blocked, the portal closed or the window moved on
    answers with the booking it made, not with a refusal."""
    key = "r" * 32
    first = book(world, idempotency_key=key)
    if change == "date_blocked":
        BlockedDate.objects.create(establishment=world.establishment, date=WED, reason="lockdown")
    elif change == "establishment_closed":
        world.establishment.rollout_stage = RolloutStage.SUSPENDED
        world.establishment.save()
    else:
        time_machine.move_to(uk(WED, 9, 0), tick=False)  # inside the minimum notice
    again = book(world, idempotency_key=key)
    assert again.pk == first.pk
    assert Booking.objects.count() == 1
    # Without the key the same form is refused.
    with pytest.raises(BookingRefused):
        book(world)


# --- Prisoner requests ------------------------------------------------------------------


@pytest.fixture
def requested(world, people):  # type: ignore[no-untyped-def]
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    return services.booking_request_create(
        connection=world.connection, starts_at=uk(WED, 10, 15), actor=people.visits_admin_x
    )


def test_staff_enter_a_request_and_the_family_is_emailed(requested, world) -> None:  # type: ignore[no-untyped-def]
    assert requested.status == BookingStatus.REQUESTED
    assert requested.request_expires_at == uk(date(2026, 11, 4), 8, 0)  # 48 hours
    assert "asked for a video call" in mail.outbox[0].subject
    assert AuditEntry.objects.filter(action=AuditAction.BOOKING_CREATE).count() == 1
    # The request holds the allowance and the slot.
    with pytest.raises(BookingRefused) as caught:
        services.booking_request_create(
            connection=world.connection, starts_at=uk(date(2026, 11, 9), 9, 30), actor=None
        )
    assert caught.value.code == "NO_ALLOWANCE"


def test_family_accepts_a_request(requested, world) -> None:  # type: ignore[no-untyped-def]
    child = factories.DependantFactory(lead_visitor=world.profile)
    with pytest.raises(BookingRefused) as caught:
        services.booking_request_accept(booking=requested, lead=world.profile, aup_accepted=False)
    assert caught.value.code == "AUP_NOT_ACCEPTED"
    booking = services.booking_request_accept(
        booking=requested, lead=world.profile, dependant_ids=[child.pk], aup_accepted=True
    )
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.visitors.count() == 2
    assert "is booked" in mail.outbox[-1].subject


def test_family_declines_a_request_and_the_allowance_returns(requested, world) -> None:  # type: ignore[no-untyped-def]
    services.booking_request_decline(booking=requested, lead=world.profile)
    requested.refresh_from_db()
    assert requested.status == BookingStatus.CANCELLED
    assert requested.cancel_reason == CancelReason.REQUEST_DECLINED
    again = services.booking_request_create(
        connection=world.connection, starts_at=uk(date(2026, 11, 9), 9, 30), actor=None
    )
    assert again.status == BookingStatus.REQUESTED


def test_unanswered_request_lapses_once(requested, world, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(uk(date(2026, 11, 4), 7, 59), tick=False)
    assert services.booking_requests_lapse() == 0
    time_machine.move_to(uk(date(2026, 11, 4), 8, 0), tick=False)
    assert services.booking_requests_lapse() == 1
    assert services.booking_requests_lapse() == 0
    requested.refresh_from_db()
    assert requested.status == BookingStatus.CANCELLED
    assert requested.cancel_reason == CancelReason.REQUEST_LAPSED
    with pytest.raises(BookingRefused) as caught:
        services.booking_request_accept(booking=requested, lead=world.profile, aup_accepted=True)
    assert caught.value.code == "NOT_CHANGEABLE"


def test_only_the_requested_visitor_answers(requested) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BookingRefused):
        services.booking_request_accept(
            booking=requested, lead=factories.VisitorProfileFactory(), aup_accepted=True
        )


# --- Staff actions ---------------------------------------------------------------------


def test_staff_cancel_with_reason_is_audited_and_emailed(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    with pytest.raises(Exception, match="reason"):
        services.booking_cancel_by_staff(
            booking=booking, actor=people.visits_admin_x, reason="family"
        )
    with pytest.raises(Exception, match="Say why"):
        services.booking_cancel_by_staff(
            booking=booking, actor=people.visits_admin_x, reason="other"
        )
    services.booking_cancel_by_staff(
        booking=booking, actor=people.visits_admin_x, reason="technical_fault", note="Laptop broken"
    )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert booking.cancelled_by == people.visits_admin_x
    entry = AuditEntry.objects.get(action=AuditAction.BOOKING_CANCEL)
    assert entry.reason == "Technical fault: Laptop broken"
    assert "Technical fault – Laptop broken" in mail.outbox[-1].body
    part, ics = calendar_of(mail.outbox[-1])
    assert str(ics["method"]) == "CANCEL" and part.get_param("method") == "CANCEL"


def test_staff_move_a_call(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    services.booking_move(
        booking=booking,
        starts_at=uk(date(2026, 11, 10), 11, 0),
        actor=people.visits_admin_x,
        reason="staff_shortage",
    )
    booking.refresh_from_db()
    assert booking.starts_at == uk(date(2026, 11, 10), 11, 0)
    assert booking.ends_at == uk(date(2026, 11, 10), 11, 30)
    assert AuditEntry.objects.get(action=AuditAction.BOOKING_MOVE).detail["reference"] == str(
        booking.reference
    )
    assert "has moved" in mail.outbox[-1].subject
    # Into another month: the allowance there counts.
    services.booking_move(
        booking=booking,
        starts_at=uk(date(2026, 11, 30), 9, 30),
        actor=None,
        reason="other",
        note="Court",
    )
    booking.refresh_from_db()
    assert booking.allowance_month == date(2026, 11, 1)


def test_move_to_a_full_slot_is_refused(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    fill_slot(world, uk(date(2026, 11, 10), 9, 30))
    with pytest.raises(BookingRefused) as caught:
        services.booking_move(
            booking=booking,
            starts_at=uk(date(2026, 11, 10), 9, 30),
            actor=None,
            reason="other",
            note="x",
        )
    assert caught.value.code == "SLOT_FULL"
    booking.refresh_from_db()
    assert booking.starts_at == uk(WED, 9, 30)


def test_blocked_date_cancels_calls_returns_allowance_and_tells_families(world, people) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    other_day = factories.BookingFactory(
        connection=factories.ConnectionFactory(
            prisoner=factories.PrisonerFactory(establishment=world.establishment)
        ),
        terminal=world.terminals[1],
        starts_at=uk(date(2026, 11, 5), 9, 30),
    )
    mail.outbox.clear()
    blocked, cancelled = services.blocked_date_add(
        establishment=world.establishment,
        day=WED,
        reason="lockdown",
        note="Whole prison",
        actor=people.visits_admin_x,
    )
    assert [b.pk for b in cancelled] == [booking.pk]
    booking.refresh_from_db()
    other_day.refresh_from_db()
    assert (
        booking.status == BookingStatus.CANCELLED and booking.cancel_reason == CancelReason.LOCKDOWN
    )
    assert other_day.status == BookingStatus.CONFIRMED
    assert len(mail.outbox) == 1 and "Lockdown – Whole prison" in mail.outbox[0].body
    entry = AuditEntry.objects.get(action=AuditAction.BLOCKED_DATE_ADD)
    assert entry.detail["cancelled"] == [str(booking.reference)]
    # The allowance is back: book another day the same month.
    assert book(world, starts_at=uk(date(2026, 11, 6), 9, 30)).status == "confirmed"
    # The same day cannot be blocked twice.
    with pytest.raises(Exception, match="already exists"):
        services.blocked_date_add(
            establishment=world.establishment, day=WED, reason="lockdown", actor=None
        )


# --- Reminders -------------------------------------------------------------------------


def test_reminders_24h_and_1h_are_sent_once(world, time_machine) -> None:  # type: ignore[no-untyped-def]
    booking = book(world)
    factories.BookingFactory(
        connection=factories.ConnectionFactory(
            prisoner=factories.PrisonerFactory(establishment=world.establishment)
        ),
        terminal=world.terminals[1],
        starts_at=uk(WED, 9, 30),
        status=BookingStatus.CANCELLED,
    )
    mail.outbox.clear()
    time_machine.move_to(uk(date(2026, 11, 3), 9, 0), tick=False)  # 24.5 h before
    assert services.booking_reminders_send() == {"24h": 0, "1h": 0}
    time_machine.move_to(uk(date(2026, 11, 3), 9, 31), tick=False)
    assert services.booking_reminders_send() == {"24h": 1, "1h": 0}
    assert services.booking_reminders_send() == {"24h": 0, "1h": 0}
    assert "tomorrow" in mail.outbox[-1].subject
    time_machine.move_to(uk(WED, 8, 35), tick=False)
    assert services.booking_reminders_send() == {"24h": 0, "1h": 1}
    assert services.booking_reminders_send() == {"24h": 0, "1h": 0}
    assert "in an hour" in mail.outbox[-1].subject
    assert len(mail.outbox) == 2
    booking.refresh_from_db()
    assert booking.reminder_24h_sent_at and booking.reminder_1h_sent_at
