"""The portal marks each slot bookable or not *before* the family chooses, and why
(issue 14, item 2), by the same rules booking_create applies; no rule code is shown.

Frozen on Monday 2 November 2026: window 4–30 November; slots 09:30, 10:15, 11:00.
"""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from django.urls import reverse

from tests import factories
from tests.bookings.conftest import fill_slot, uk

pytestmark = pytest.mark.django_db

WED, THU, FRI = date(2026, 11, 4), date(2026, 11, 5), date(2026, 11, 6)


def key(moment) -> str:  # type: ignore[no-untyped-def]
    from bookings.selectors import slot_key

    return slot_key(moment)


def portal(client, world, **query):  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    response = client.get(reverse("bookings:portal", args=[world.establishment.code]), query)
    assert response.status_code == 200
    return response.content.decode()


def why(content: str, moment) -> str | None:  # type: ignore[no-untyped-def]
    """The reason shown for the slot at ``moment``; None when it is bookable."""
    found = re.search(
        rf'data-slot-unavailable="{re.escape(key(moment))}">Not available: ([^<]*)<', content
    )
    bookable = f'value="{key(moment)}"' in content
    assert bookable != bool(found), "a slot is either bookable or has a reason, not both"
    return html.unescape(found.group(1)) if found else None


def other_booking(world, starts_at, **kwargs):  # type: ignore[no-untyped-def]
    """A call by an unrelated family (or for another prisoner)."""
    params = {
        "establishment": world.establishment,
        "prisoner": world.prisoner,
        "terminal": world.terminals[0],
        "starts_at": starts_at,
    }
    params.update(kwargs)
    return factories.BookingFactory(**params)


def test_a_used_month_is_marked_with_when_the_next_call_can_be(client, world) -> None:  # type: ignore[no-untyped-def]
    other_booking(world, uk(date(2026, 11, 20), 10, 15))
    content = portal(client, world)
    reason = why(content, uk(WED, 9, 30))
    # November is used and December is not in the window yet: say when it will be.
    assert reason == (
        "November's call with Sam is used – no more can be booked yet: calls in December "
        "can be booked from 3 November"
    )
    assert 'November <span class="muted">none left</span>' in content
    assert "Continue" not in content  # nothing to choose
    # With the window into December, the next month is offered.
    world.establishment.max_days_ahead = 40
    world.establishment.save()
    content = portal(client, world)
    assert why(content, uk(WED, 9, 30)) == "November's call with Sam is used – next from 1 December"
    assert why(content, uk(date(2026, 12, 2), 9, 30)) is None
    assert "(next from 1 December)" in content


def test_the_familys_own_call_and_the_prisoners_other_calls(client, world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.calls_per_month = 4
    world.establishment.save()
    factories.BookingFactory(
        connection=world.connection, terminal=world.terminals[0], starts_at=uk(WED, 9, 30)
    )
    other_booking(world, uk(THU, 10, 15))  # another family: not named
    content = portal(client, world)
    assert why(content, uk(WED, 9, 30)) == "you already have a call then"
    assert why(content, uk(THU, 10, 15)) == "Sam is not free then"
    assert why(content, uk(WED, 10, 15)) is None
    assert why(content, uk(THU, 9, 30)) is None


def test_a_full_slot_is_marked_and_a_restriction_is_said(client, world) -> None:  # type: ignore[no-untyped-def]
    fill_slot(world, uk(FRI, 9, 30))
    content = portal(client, world)
    assert why(content, uk(FRI, 9, 30)) == "fully booked"
    world.prisoner.video_calls_restricted_until = THU
    world.prisoner.save()
    content = portal(client, world)
    assert why(content, uk(WED, 11, 0)) == "no video calls with Sam until 6 November"
    assert why(content, uk(THU, 11, 0)) == "no video calls with Sam until 6 November"
    assert why(content, uk(FRI, 10, 15)) is None


def test_marks_follow_the_chosen_connection(client, world) -> None:  # type: ignore[no-untyped-def]
    second = factories.ConnectionFactory(
        visitor=world.profile,
        prisoner=factories.PrisonerFactory(
            establishment=world.establishment,
            first_name="Alex",
            last_name="Zed",  # listed after Sam
            prison_number="B2345CD",
        ),
    )
    other_booking(world, uk(date(2026, 11, 20), 10, 15))  # Sam's November is used
    assert why(portal(client, world), uk(WED, 9, 30)) is not None  # first: Sam (by name)
    content = portal(client, world, connection=second.pk)
    assert why(content, uk(WED, 9, 30)) is None
    assert f'name="connection" value="{second.pk}"' in content


def test_the_portal_keeps_its_query_budget(client, world, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    world.establishment.calls_per_month = 4
    world.establishment.save()
    for day in (WED, THU, FRI):
        other_booking(world, uk(day, 9, 30))
    client.force_login(world.user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("bookings:portal", args=[world.establishment.code]))
    assert why(response.content.decode(), uk(WED, 9, 30)) == "Sam is not free then"


def test_refusals_show_plain_words_not_rule_codes(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    url = reverse("bookings:book", args=[world.establishment.code])
    response = client.post(
        url,
        {
            "connection": world.connection.pk,
            "slot": key(uk(WED, 9, 30)),
            "idempotency_key": "k" * 32,
        },
    )
    assert response.status_code == 400
    text = re.sub(r'data-code="[A-Z_]+"', "", response.content.decode())
    assert "acceptable use policy" in text
    assert "AUP_NOT_ACCEPTED" not in text and "Rule:" not in text
