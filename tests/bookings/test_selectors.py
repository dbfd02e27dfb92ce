from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from bookings import selectors
from bookings.timezones import time_zone_for_country
from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db


def test_slots_follow_the_sessions_every_call_plus_changeover(world) -> None:  # type: ignore[no-untyped-def]
    day = date(2026, 11, 4)
    slots = selectors.slots_between(world.establishment, day, day)
    assert [s.local_start.strftime("%H:%M") for s in slots] == ["09:30", "10:15", "11:00"]
    assert all(s.capacity == 2 and s.free == 2 for s in slots)
    assert slots[0].key == "2026-11-04T09:30:00Z"


def test_window_and_blocked_dates(world, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    factories.BlockedDateFactory(establishment=world.establishment, date=date(2026, 11, 10))
    with django_assert_max_num_queries(4):
        slots = selectors.bookable_slots(world.establishment)
    days = {s.local_start.date() for s in slots}
    assert min(days) == date(2026, 11, 4) and max(days) == date(2026, 11, 30)
    assert date(2026, 11, 10) not in days
    assert len(slots) == (len(range(4, 31)) - 1) * 3


def test_booked_terminals_reduce_free_places(world) -> None:  # type: ignore[no-untyped-def]
    factories.BookingFactory(
        connection=factories.ConnectionFactory(prisoner=world.prisoner),
        terminal=world.terminals[0],
        starts_at=uk(date(2026, 11, 4), 9, 30),
    )
    slots = selectors.slots_between(world.establishment, date(2026, 11, 4), date(2026, 11, 4))
    assert [s.free for s in slots] == [1, 2, 2]


def test_valid_from_and_to(world) -> None:  # type: ignore[no-untyped-def]
    factories.VisitSessionFactory(
        establishment=world.establishment,
        weekday=2,
        start_time=time(14),
        end_time=time(14, 30),
        valid_from=date(2026, 11, 11),
        valid_to=date(2026, 11, 11),
    )
    on = selectors.slots_between(world.establishment, date(2026, 11, 11), date(2026, 11, 11))
    off = selectors.slots_between(world.establishment, date(2026, 11, 18), date(2026, 11, 18))
    assert len(on) == 4 and len(off) == 3


def test_clock_changes_use_uk_wall_clock_time(establishment_x) -> None:  # type: ignore[no-untyped-def]
    # Sunday 29 March 2026 the clocks go forward at 01:00; 25 October 2026 back at 02:00.
    factories.VisitSessionFactory(
        establishment=establishment_x, weekday=6, start_time=time(0, 30), end_time=time(2, 45)
    )
    spring = selectors.slots_between(establishment_x, date(2026, 3, 29), date(2026, 3, 29))
    # 01:15 does not exist that night; 00:30 is GMT, 02:00 is BST.
    assert [s.local_start.strftime("%H:%M") for s in spring] == ["00:30", "02:00"]
    assert spring[0].starts_at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert spring[1].starts_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    summer = selectors.slots_between(establishment_x, date(2026, 6, 7), date(2026, 6, 7))
    assert summer[0].starts_at == datetime(2026, 6, 6, 23, 30, tzinfo=UTC)
    autumn = selectors.slots_between(establishment_x, date(2026, 10, 25), date(2026, 10, 25))
    # 01:15 happens twice: the first (BST) one is offered, and lasts 30 real minutes.
    assert autumn[1].starts_at == datetime(2026, 10, 25, 0, 15, tzinfo=UTC)
    assert all((s.ends_at - s.starts_at).total_seconds() == 1800 for s in autumn)


def test_slot_keys_round_trip_and_reject_garbage() -> None:
    moment = datetime(2026, 11, 4, 9, 30, tzinfo=UTC)
    assert selectors.parse_slot_key(selectors.slot_key(moment)) == moment
    for bad in [
        "",
        "tomorrow",
        "2026-11-04 09:30",
        "2026-13-04T09:30:00Z",
        "x" * 10_000,
        "2026-11-04T09:30:00Z'; DROP",
    ]:
        assert selectors.parse_slot_key(bad) is None


def test_country_time_zones() -> None:
    assert time_zone_for_country("FR").key == "Europe/Paris"  # type: ignore[union-attr]
    assert time_zone_for_country("jm").key == "America/Jamaica"  # type: ignore[union-attr]
    assert time_zone_for_country("US") is None  # several zones: we do not guess
    assert time_zone_for_country("ZZ") is None
    assert time_zone_for_country("") is None


def test_family_time_zone(world) -> None:  # type: ignore[no-untyped-def]
    assert selectors.family_time_zone(world.profile, world.establishment).differs is False
    world.profile.country_of_residence = "PL"
    local = selectors.family_time_zone(world.profile, world.establishment)
    assert local.differs and local.zone is not None and local.zone.key == "Europe/Warsaw"
    world.profile.country_of_residence = "AU"
    local = selectors.family_time_zone(world.profile, world.establishment)
    assert local.differs and local.zone is None


def _same_values(got: object, expected: object) -> None:
    for field in type(expected)._meta.concrete_fields:  # type: ignore[attr-defined]
        mine, theirs = getattr(got, field.attname), getattr(expected, field.attname)
        assert (mine, type(mine)) == (theirs, type(theirs)), field.name


def test_own_connection_is_found_only_for_its_user_establishment_and_approval(world) -> None:  # type: ignore[no-untyped-def]
    from identity.models import ConnectionStatus

    user, code, pk = world.user, world.establishment.code, world.connection.pk
    found = selectors.own_connection_at(user, code, pk)
    assert found is not None and found.pk == pk
    # The relations come with it.
    assert found.visitor.pk == world.profile.pk
    assert found.prisoner.establishment.code == code
    other_user = factories.UserFactory()
    assert selectors.own_connection_at(other_user, code, pk) is None
    assert selectors.own_connection_at(user, "somewhere-else", pk) is None
    for bad in ("", "x", "-1", "0", str(2**63), "1e3"):
        assert selectors.own_connection_at(user, code, bad) is None
    world.connection.status = ConnectionStatus.REVOKED
    world.connection.save()
    assert selectors.own_connection_at(user, code, pk) is None


def test_own_connection_in_plain_sql_is_what_the_orm_reads(
    world, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL's plain-SQL read builds the same four objects, value for value and
    type for type, as the ORM's select_related (a field whose database value needs a
    converter would show here)."""
    from django.db import connection as database

    from identity.models import Connection

    if database.vendor != "postgresql":
        pytest.skip("the plain-SQL read is PostgreSQL's (set DATABASE_URL)")
    world.prisoner.video_calls_restricted_until = date(2026, 10, 1)
    world.prisoner.save()
    with django_assert_num_queries(1):
        got = selectors.own_connection_at(world.user, world.establishment.code, world.connection.pk)
        assert got is not None
        # Everything the page reads is in memory already.
        assert got.visitor.user_id and got.prisoner.establishment.tz
    expected = Connection.objects.select_related("visitor", "prisoner__establishment").get(
        pk=world.connection.pk
    )
    _same_values(got, expected)
    _same_values(got.visitor, expected.visitor)
    _same_values(got.prisoner, expected.prisoner)
    _same_values(got.prisoner.establishment, expected.prisoner.establishment)
    assert not got._state.adding and got.prisoner.establishment._state.db == "default"
