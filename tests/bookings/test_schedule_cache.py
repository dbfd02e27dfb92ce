"""The cached schedule (establishments/schedule.py): the booking pages read sessions,
terminals and blocked dates once; any change shows at once; booking never trusts it."""

from __future__ import annotations

from datetime import time, timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bookings.models import Booking
from establishments import schedule
from establishments.models import BlockedDate, Terminal, VisitSession
from tests import factories
from tests.bookings.test_views import WED, book_page, fill_slot, portal_url, post_booking

pytestmark = pytest.mark.django_db


def schedule_queries(queries) -> list[str]:  # type: ignore[no-untyped-def]
    tables = (
        "establishments_visitsession",
        "establishments_terminal",
        "establishments_blockeddate",
    )
    return [
        q["sql"]
        for q in queries
        if any(f'"{table}"."establishment_id"' in q["sql"] for table in tables)
    ]


def test_the_second_booking_page_reads_the_schedule_from_the_cache(  # type: ignore[no-untyped-def]
    client, world, django_assert_max_num_queries
) -> None:
    client.force_login(world.user)

    with CaptureQueriesContext(connection) as first:
        assert book_page(client, world).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert book_page(client, world).status_code == 200
    assert len(schedule_queries(first.captured_queries)) == 3
    assert schedule_queries(second.captured_queries) == []
    assert len(second.captured_queries) == len(first.captured_queries) - 3
    with django_assert_max_num_queries(9):
        assert book_page(client, world).status_code == 200


@pytest.mark.parametrize("change", ["blocked_date", "session_deleted", "session_moved"])
def test_a_schedule_change_shows_on_the_next_page(client, world, change) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    assert book_page(client, world).status_code == 200  # the schedule is now cached
    wednesday = VisitSession.objects.get(establishment=world.establishment, weekday=WED.weekday())
    if change == "blocked_date":
        BlockedDate.objects.create(establishment=world.establishment, date=WED, reason="lockdown")
        expected = "DATE_BLOCKED"
    elif change == "session_deleted":
        wednesday.delete()
        expected = "SLOT_NOT_OFFERED"
    else:
        wednesday.start_time, wednesday.end_time = time(14, 0), time(15, 0)
        wednesday.save()
        expected = "SLOT_NOT_OFFERED"
    content = book_page(client, world).content.decode()
    assert f'data-code="{expected}"' in content
    assert 'name="idempotency_key"' not in content
    # Nor can it be booked.
    assert f'data-code="{expected}"' in post_booking(client, world).content.decode()
    assert Booking.objects.count() == 0


def test_a_terminal_taken_out_of_use_shows_on_the_portal(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    assert "2 free" in client.get(portal_url(world)).content.decode()
    Terminal.objects.filter(pk=world.terminals[1].pk).get().delete()
    content = client.get(portal_url(world)).content.decode()
    assert "2 free" not in content and "1 free" in content


def test_the_cache_is_cleared_again_when_the_change_commits(world) -> None:  # type: ignore[no-untyped-def]
    """A page in another process may cache the old schedule between the change and its
    commit: the copy is removed once more on commit."""
    establishment = world.establishment
    key = schedule._key(establishment.pk)
    with mock.patch.object(transaction, "on_commit") as on_commit:
        BlockedDate.objects.create(establishment=establishment, date=WED, reason="lockdown")
    assert cache.get(key) is None
    # Meanwhile another process reads the old schedule and caches it...
    stale = schedule.schedule_for(establishment, WED, WED)
    stale = schedule.Schedule(stale.sessions, stale.terminal_ids, stale.blocked_from, frozenset())
    cache.set(key, stale)
    # ...and the commit removes it.
    (callback,) = [call.args[0] for call in on_commit.call_args_list]
    callback()
    assert cache.get(key) is None
    assert WED in schedule.schedule_for(establishment, WED, WED, cached=True).blocked


def test_booking_asks_the_database_whether_the_day_is_blocked(client, world) -> None:  # type: ignore[no-untyped-def]
    """Even a stale cached copy (a blocked date it does not know of: the cache could
    not be cleared) books nothing on a blocked day."""
    establishment = world.establishment
    current = schedule.schedule_for(establishment, WED, WED, cached=True)
    BlockedDate.objects.create(establishment=establishment, date=WED, reason="lockdown")
    cache.set(schedule._key(establishment.pk), current)  # stale on purpose
    client.force_login(world.user)
    assert 'data-code="DATE_BLOCKED"' not in book_page(client, world).content.decode()
    response = post_booking(client, world)
    assert 'data-code="DATE_BLOCKED"' in response.content.decode()
    assert Booking.objects.count() == 0


def test_a_full_slot_is_never_cached(client, world) -> None:  # type: ignore[no-untyped-def]
    """Only the schedule is cached, not who booked: a slot filled after the schedule
    was cached is full on the next page."""
    client.force_login(world.user)
    assert book_page(client, world).status_code == 200
    fill_slot(world)
    assert 'data-code="SLOT_FULL"' in book_page(client, world).content.decode()


def test_an_unreachable_cache_falls_back_to_the_database(client, world, caplog) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    broken = mock.Mock(side_effect=ConnectionError("cache down"))
    with (
        mock.patch.object(schedule.cache, "get", broken),
        mock.patch.object(schedule.cache, "set", broken),
        mock.patch.object(schedule.cache, "delete", broken),
    ):
        assert book_page(client, world).status_code == 200
        # A change while the cache is down is still saved.
        BlockedDate.objects.create(establishment=world.establishment, date=WED, reason="lockdown")
        assert 'data-code="DATE_BLOCKED"' in book_page(client, world).content.decode()
    assert "schedule cache unreachable" in caplog.text


def test_dates_before_the_cached_range_come_from_the_database(world) -> None:  # type: ignore[no-untyped-def]
    establishment = world.establishment
    cached = schedule.schedule_for(establishment, WED, WED, cached=True)
    long_ago = cached.blocked_from - timedelta(days=10)
    BlockedDate.objects.create(establishment=establishment, date=long_ago, reason="lockdown")
    cache.set(schedule._key(establishment.pk), cached)  # as it was before that change
    assert cached.blocked_between(establishment, long_ago, long_ago) == {long_ago}
    assert cached.blocked_between(establishment, WED, WED) == set()


def test_the_schedule_of_another_establishment_is_kept(world, establishment_y) -> None:  # type: ignore[no-untyped-def]
    factories.VisitSessionFactory(establishment=establishment_y, weekday=0)
    schedule.schedule_for(world.establishment, WED, WED, cached=True)
    schedule.schedule_for(establishment_y, WED, WED, cached=True)
    BlockedDate.objects.create(establishment=establishment_y, date=WED, reason="lockdown")
    assert cache.get(schedule._key(world.establishment.pk)) is not None
    assert cache.get(schedule._key(establishment_y.pk)) is None
