"""The booking's one read in plain SQL (services._slot_and_month_rows) answers exactly
what the rules say: random bookings, every status, partial overlaps, changeovers kept
or not, month edges."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bookings import services
from bookings.models import ACTIVE_STATUSES, ALLOWANCE_STATUSES, Booking, BookingStatus
from tests import factories

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)  # a few days before a month's end


def overlap(a: Booking | SimpleNamespace, b: Booking | SimpleNamespace) -> bool:
    return a.starts_at < b.ends_at and a.ends_at > b.starts_at


def ranges_meet(a: Booking | SimpleNamespace, b: Booking | SimpleNamespace) -> bool:
    """What the terminal exclusion constraint refuses: [start, terminal_free_at) overlap."""
    return a.starts_at < b.terminal_free_at and a.terminal_free_at > b.starts_at


CHANGEOVER = timedelta(minutes=15)


def too_close(b: Booking, slot: SimpleNamespace) -> bool:
    """The laptop is b's until b.terminal_free_at; the slot needs it until its end plus
    the changeover."""
    return b.starts_at < slot.ends_at + CHANGEOVER and b.terminal_free_at > slot.starts_at


def expected(bookings, prisoner_id, slot, month, terminal_ids, exclude) -> Counter:  # type: ignore[no-untyped-def]
    rows: Counter = Counter()
    for b in bookings:
        if b.pk == exclude:
            continue
        active = b.status in ACTIVE_STATUSES
        prisoner_busy = active and overlap(b, slot)
        terminal_busy = active and too_close(b, slot)
        counts = (
            b.prisoner_id == prisoner_id
            and b.allowance_month == month
            and b.status in ALLOWANCE_STATUSES
        )
        if (
            (prisoner_busy and b.prisoner_id == prisoner_id)
            or (terminal_busy and b.terminal_id in terminal_ids)
            or counts
        ):
            rows[(b.prisoner_id, b.terminal_id, prisoner_busy, terminal_busy, counts)] += 1
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_the_sql_read_matches_the_rules_on_random_bookings(establishment_x, seed) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    terminals = [factories.TerminalFactory(establishment=establishment_x) for _ in range(3)]
    connections = [
        factories.ConnectionFactory(
            prisoner=factories.PrisonerFactory(establishment=establishment_x)
        )
        for _ in range(3)
    ]
    statuses = list(BookingStatus)
    made: list[Booking] = []
    for _ in range(60):
        starts = START + timedelta(minutes=15 * rng.randrange(0, 8 * 24 * 4))  # 8 days
        ends = starts + timedelta(minutes=30)
        # Some rows (made before the changeover, or by other writers) have none.
        free_at = ends + rng.choice([CHANGEOVER, timedelta(0)])
        candidate = SimpleNamespace(starts_at=starts, ends_at=ends, terminal_free_at=free_at)
        connection, terminal = rng.choice(connections), rng.choice(terminals)
        status = rng.choice(statuses)
        if status in ACTIVE_STATUSES and any(
            b.status in ACTIVE_STATUSES
            and (
                (b.terminal_id == terminal.pk and ranges_meet(b, candidate))
                or (b.prisoner_id == connection.prisoner_id and overlap(b, candidate))
            )
            for b in made
        ):
            status = BookingStatus.CANCELLED  # the database would refuse the overlap
        made.append(
            factories.BookingFactory(
                connection=connection,
                terminal=terminal,
                starts_at=starts,
                ends_at=ends,
                terminal_free_at=free_at,
                status=status,
                allowance_month=starts.date().replace(day=1),
                with_lead_visitor=False,
            )
        )
    bookings = list(Booking.objects.all())
    asked = 0
    for _ in range(40):
        starts = START + timedelta(minutes=15 * rng.randrange(0, 8 * 24 * 4))
        slot = SimpleNamespace(starts_at=starts, ends_at=starts + timedelta(minutes=30))
        prisoner_id = rng.choice(connections).prisoner_id
        month = rng.choice([starts.date().replace(day=1), (starts + timedelta(days=5)).date()])
        month = month.replace(day=1)
        terminal_ids = [t.pk for t in rng.sample(terminals, rng.randrange(0, 4))]
        exclude = rng.choice([None, rng.choice(bookings).pk])
        got = services._slot_and_month_rows(
            prisoner_id=prisoner_id,
            slot=slot,  # type: ignore[arg-type]
            month=month,
            terminal_ids=terminal_ids,
            exclude_booking_id=exclude,
            changeover=CHANGEOVER,
        )
        assert Counter(got) == expected(bookings, prisoner_id, slot, month, terminal_ids, exclude)
        asked += bool(got)
    assert asked > 10  # the random cases did find bookings, not only empty answers
