"""Changeover on each laptop (issue 14, item 3): a call keeps the laptop for
``changeover_minutes`` after it ends, and a booking picks a laptop that keeps it.

Two session templates that overlap (09:30–11:45 and 10:00–12:00) give slots 15 minutes
apart closer than the 30 + 15 grid: 09:30–10:00, then 10:00–10:30.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from bookings import selectors, services
from bookings.models import Booking, BookingStatus
from bookings.rules import BookingRefused
from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)


@pytest.fixture
def overlapping(world):  # type: ignore[no-untyped-def]
    world.establishment.calls_per_month = 4
    world.establishment.save()
    factories.VisitSessionFactory(
        establishment=world.establishment,
        weekday=WED.weekday(),
        start_time=time(10, 0),
        end_time=time(12, 0),
    )
    return world


def book(world, connection, starts_at):  # type: ignore[no-untyped-def]
    return services.booking_create(
        connection=connection, lead=connection.visitor, starts_at=starts_at, aup_accepted=True
    )


def test_the_next_call_goes_on_the_laptop_whose_changeover_is_over(overlapping) -> None:  # type: ignore[no-untyped-def]
    world = overlapping
    first = book(world, world.connection, uk(WED, 9, 30))
    assert first.terminal_free_at == uk(WED, 10, 15)  # 10:00 + 15 minutes changeover
    other = factories.ConnectionFactory(
        prisoner=factories.PrisonerFactory(establishment=world.establishment)
    )
    second = book(world, other, uk(WED, 10, 0))
    assert second.terminal_id != first.terminal_id  # laptop 1 is still being changed over
    # The 10:00 slot is shown with the one laptop that could take it, and now none.
    slot = next(
        s
        for s in selectors.slots_between(world.establishment, WED, WED)
        if s.starts_at == uk(WED, 10, 0)
    )
    assert slot.free == 0
    third = factories.ConnectionFactory(
        prisoner=factories.PrisonerFactory(establishment=world.establishment)
    )
    with pytest.raises(BookingRefused) as caught:
        book(world, third, uk(WED, 10, 0))
    assert caught.value.code == "SLOT_FULL"
    # A call's own changeover must be over before the laptop's next call: 09:30–10:00
    # (+ 15 minutes) on laptop 2 would run into its 10:00 call, so 09:30 is full too.
    with pytest.raises(BookingRefused) as caught:
        book(world, third, uk(WED, 9, 30))
    assert caught.value.code == "SLOT_FULL"


def test_without_a_changeover_back_to_back_calls_share_a_laptop(overlapping) -> None:  # type: ignore[no-untyped-def]
    world = overlapping
    world.establishment.changeover_minutes = 0
    world.establishment.save()
    first = book(world, world.connection, uk(WED, 9, 30))
    other = factories.ConnectionFactory(
        prisoner=factories.PrisonerFactory(establishment=world.establishment)
    )
    second = book(world, other, uk(WED, 10, 0))
    assert second.terminal_id == first.terminal_id  # the first free laptop, by id


def test_a_staff_move_keeps_the_changeover_too(overlapping, people) -> None:  # type: ignore[no-untyped-def]
    world = overlapping
    first = book(world, world.connection, uk(WED, 9, 30))
    other = factories.ConnectionFactory(
        prisoner=factories.PrisonerFactory(establishment=world.establishment)
    )
    moved = book(world, other, uk(WED, 11, 0))
    moved = services.booking_move(
        booking=moved,
        starts_at=uk(WED, 10, 0),
        actor=people.visits_admin_x,
        reason="other",
        note="x",
    )
    assert moved.terminal_id != first.terminal_id
    assert moved.terminal_free_at == uk(WED, 10, 45)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's"
)
def test_the_database_refuses_a_call_inside_another_calls_changeover(overlapping) -> None:  # type: ignore[no-untyped-def]
    world = overlapping
    first = book(world, world.connection, uk(WED, 9, 30))
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(
            establishment=world.establishment,
            prisoner=factories.PrisonerFactory(establishment=world.establishment),
            terminal=first.terminal,
            lead_visitor=world.profile,
            connection=world.connection,
            starts_at=uk(WED, 10, 0),
            ends_at=uk(WED, 10, 30),
            terminal_free_at=uk(WED, 10, 45),
            allowance_month=date(2026, 11, 1),
            status=BookingStatus.CONFIRMED,
        )
    assert first.terminal_free_at - first.ends_at == timedelta(minutes=15)
