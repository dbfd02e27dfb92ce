"""Races tested for real (CONVENTIONS #12): threads against PostgreSQL.

Every attempt waits at a barrier so they all start together, and the allowance count
is followed by a short pause that widens the race window: with the lock, the attempts
still run one after the other; without it (the control), they all read "no calls this
month" before any of them commits.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from django.db import connection, connections

from bookings import services
from bookings.models import Booking, BookingStatus
from bookings.rules import BookingRefused
from tests import factories
from tests.bookings.conftest import uk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 8


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("Concurrency tests need PostgreSQL (SQLite has no row locks): set DATABASE_URL")


@pytest.fixture
def slow_allowance_count(monkeypatch):  # type: ignore[no-untyped-def]
    """Widen the gap between reading availability (the slot's bookings and the
    prisoner's allowance) and writing the booking, as a busy server would."""
    original = services._free_terminals

    def slow(**kwargs):  # type: ignore[no-untyped-def]
        answer = original(**kwargs)
        time.sleep(0.05)
        return answer

    monkeypatch.setattr(services, "_free_terminals", slow)


def run_together(attempts: list) -> Counter[str]:  # type: ignore[type-arg]
    barrier = threading.Barrier(len(attempts))

    def attempt(call):  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=30)
            call()
            return "ok"
        except BookingRefused as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return Counter(pool.map(attempt, attempts))


def families(world, count: int, *, same_prisoner: bool):  # type: ignore[no-untyped-def]
    result = []
    for _ in range(count):
        prisoner = (
            world.prisoner
            if same_prisoner
            else factories.PrisonerFactory(establishment=world.establishment)
        )
        result.append(factories.ConnectionFactory(prisoner=prisoner))
    return result


def booker(connection_, starts_at):  # type: ignore[no-untyped-def]
    return lambda: services.booking_create(
        connection=connection_, lead=connection_.visitor, starts_at=starts_at, aup_accepted=True
    )


def test_many_families_book_the_last_place_exactly_one_wins(world, slow_allowance_count) -> None:  # type: ignore[no-untyped-def]
    world.terminals[1].is_active = False
    world.terminals[1].save()
    starts_at = uk(date(2026, 11, 4), 9, 30)
    outcome = run_together(
        [booker(c, starts_at) for c in families(world, THREADS, same_prisoner=False)]
    )
    assert outcome["ok"] == 1
    assert outcome["SLOT_FULL"] == THREADS - 1
    assert Booking.objects.filter(status=BookingStatus.CONFIRMED).count() == 1


def test_many_slots_for_one_prisoner_exactly_one_wins(world, slow_allowance_count) -> None:  # type: ignore[no-untyped-def]
    slots = [uk(date(2026, 11, 4) + timedelta(days=n), 9, 30) for n in range(THREADS)]
    conns = families(world, THREADS, same_prisoner=True)
    outcome = run_together([booker(c, s) for c, s in zip(conns, slots, strict=True)])
    assert outcome == Counter({"ok": 1, "NO_ALLOWANCE": THREADS - 1})
    assert Booking.objects.filter(prisoner=world.prisoner).count() == 1


def test_control_without_the_lock_the_allowance_is_oversold(
    world, slow_allowance_count, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "lock_for_booking", lambda **kwargs: None)
    slots = [uk(date(2026, 11, 4) + timedelta(days=n), 9, 30) for n in range(THREADS)]
    conns = families(world, THREADS, same_prisoner=True)
    outcome = run_together([booker(c, s) for c, s in zip(conns, slots, strict=True)])
    booked = Booking.objects.filter(
        prisoner=world.prisoner, allowance_month=date(2026, 11, 1)
    ).count()
    # The race is real: more than the one call a month got through.
    assert outcome["ok"] == booked > 1


def test_control_without_the_lock_the_database_still_stops_a_double_booked_terminal(
    world, slow_allowance_count, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "lock_for_booking", lambda **kwargs: None)
    world.terminals[1].is_active = False
    world.terminals[1].save()
    starts_at = uk(date(2026, 11, 4), 9, 30)
    outcome = run_together(
        [booker(c, starts_at) for c in families(world, THREADS, same_prisoner=False)]
    )
    assert outcome["ok"] == 1
    assert (
        Booking.objects.filter(terminal=world.terminals[0], status=BookingStatus.CONFIRMED).count()
        == 1
    )


def test_exclusion_constraint_stops_overlapping_calls_on_a_terminal(world) -> None:  # type: ignore[no-untyped-def]
    from django.db import IntegrityError, transaction

    factories.BookingFactory(
        connection=world.connection,
        terminal=world.terminals[0],
        starts_at=uk(date(2026, 11, 4), 9, 30),
    )
    other = factories.ConnectionFactory(
        prisoner=factories.PrisonerFactory(establishment=world.establishment)
    )
    with (
        pytest.raises(IntegrityError, match="booking_terminal_keeps_changeover"),
        transaction.atomic(),
    ):
        factories.BookingFactory(
            connection=other, terminal=world.terminals[0], starts_at=uk(date(2026, 11, 4), 9, 45)
        )


def test_double_click_waits_for_the_lock_and_returns_the_same_booking(world) -> None:  # type: ignore[no-untyped-def]
    key = "double-click-key-0123456789"
    starts_at = uk(date(2026, 11, 4), 9, 30)
    results: list[int] = []

    def click() -> None:
        booking = services.booking_create(
            connection=world.connection,
            lead=world.profile,
            starts_at=starts_at,
            aup_accepted=True,
            idempotency_key=key,
        )
        results.append(booking.pk)

    outcome = run_together([click] * 4)
    assert outcome == Counter({"ok": 4})
    assert len(set(results)) == 1 and Booking.objects.count() == 1


# --- Family moves (issue 14, item 5): the same locks as a booking ----------------------


def mover(booking):  # type: ignore[no-untyped-def]
    return lambda starts_at: (
        lambda: services.booking_move_by_family(
            booking=booking, lead=booking.lead_visitor, starts_at=starts_at
        )
    )


def booked(connection_, starts_at):  # type: ignore[no-untyped-def]
    return factories.BookingFactory(
        connection=connection_,
        # A laptop of its own, out of use for new calls: it takes no other booking.
        terminal=factories.TerminalFactory(
            establishment=connection_.prisoner.establishment, is_active=False
        ),
        starts_at=starts_at,
    )


def test_many_families_move_into_the_last_place_exactly_one_wins(
    world, slow_allowance_count
) -> None:  # type: ignore[no-untyped-def]
    world.terminals[1].is_active = False
    world.terminals[1].save()
    target = uk(date(2026, 11, 5), 9, 30)
    conns = families(world, THREADS, same_prisoner=False)
    # Each family's call on a laptop of its own (inactive for new bookings: only the
    # one active laptop is free at the target time).
    bookings = [
        booked(c, uk(date(2026, 11, 4) + timedelta(days=2 + n), 9, 30)) for n, c in enumerate(conns)
    ]
    outcome = run_together([mover(b)(target) for b in bookings])
    assert outcome == Counter({"ok": 1, "SLOT_FULL": THREADS - 1})
    at_target = Booking.objects.filter(starts_at=target, status=BookingStatus.CONFIRMED)
    assert at_target.count() == 1
    # The losers are where they were.
    assert Booking.objects.filter(starts_at__gt=target).count() == THREADS - 1


def test_a_move_into_a_month_races_a_booking_there_one_wins(world, slow_allowance_count) -> None:  # type: ignore[no-untyped-def]
    """One call a month: family A moves its November call into December while other
    families of the same prisoner book December. December must end with one call."""
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    november = booked(world.connection, uk(date(2026, 11, 10), 9, 30))
    december = [uk(date(2026, 12, 1) + timedelta(days=n), 9, 30) for n in range(THREADS)]
    others = families(world, THREADS - 1, same_prisoner=True)
    attempts = [mover(november)(december[0])] + [
        booker(c, s) for c, s in zip(others, december[1:], strict=True)
    ]
    outcome = run_together(attempts)
    assert outcome == Counter({"ok": 1, "NO_ALLOWANCE": THREADS - 1})
    assert (
        Booking.objects.filter(
            prisoner=world.prisoner,
            allowance_month=date(2026, 12, 1),
            status=BookingStatus.CONFIRMED,
        ).count()
        == 1
    )


def test_control_without_the_lock_a_move_oversells_the_month(
    world, slow_allowance_count, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "lock_for_booking", lambda **kwargs: None)
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    november = booked(world.connection, uk(date(2026, 11, 10), 9, 30))
    december = [uk(date(2026, 12, 1) + timedelta(days=n), 9, 30) for n in range(THREADS)]
    others = families(world, THREADS - 1, same_prisoner=True)
    attempts = [mover(november)(december[0])] + [
        booker(c, s) for c, s in zip(others, december[1:], strict=True)
    ]
    outcome = run_together(attempts)
    in_december = Booking.objects.filter(
        prisoner=world.prisoner, allowance_month=date(2026, 12, 1)
    ).count()
    # The race is real: more than December's one call got through.
    assert outcome["ok"] == in_december > 1


def test_two_tabs_move_the_same_call_one_move_wins(world, slow_allowance_count) -> None:  # type: ignore[no-untyped-def]
    booking = booked(world.connection, uk(date(2026, 11, 10), 9, 30))
    targets = [uk(date(2026, 11, 11) + timedelta(days=n), 9, 30) for n in range(4)]
    outcome = run_together([mover(booking)(t) for t in targets])
    assert outcome == Counter({"ok": 1, "NOT_CHANGEABLE": 3})
    booking.refresh_from_db()
    assert booking.starts_at in targets and booking.calendar_sequence == 1
    assert Booking.objects.count() == 1
