"""Staff see what became of each prisoner's request, to tell the prisoner."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from establishments.models import RequestMode
from identity.models import ConnectionStatus
from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)


@pytest.fixture
def requests_made(world, people, time_machine):  # type: ignore[no-untyped-def]
    """Five requests, one in each state, and a family's own booking."""
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    made = {}
    for n, state in enumerate(["waiting", "accepted", "declined", "lapsed", "cancelled"]):
        connection = factories.ConnectionFactory(
            status=ConnectionStatus.APPROVED,
            prisoner=factories.PrisonerFactory(
                establishment=world.establishment, last_name=f"Prisoner-{state}"
            ),
            visitor=factories.VisitorProfileFactory(legal_name=f"Visitor {state}"),
        )
        made[state] = services.booking_request_create(
            connection=connection,
            starts_at=uk(WED + timedelta(days=n), 10, 15),
            actor=people.visits_admin_x,
        )
        if state == "accepted":
            services.booking_request_accept(
                booking=made[state], lead=connection.visitor, aup_accepted=True
            )
        elif state == "declined":
            services.booking_request_decline(booking=made[state], lead=connection.visitor)
        elif state == "cancelled":
            services.booking_cancel_by_staff(
                booking=made[state], actor=people.visits_admin_x, reason="staff_shortage"
            )
    # The "lapsed" one is never answered: two days on the beat task lapses it (and the
    # "waiting" one, which is re-entered afterwards so that it is still open).
    time_machine.move_to(timezone.now() + timedelta(hours=49), tick=False)
    services.booking_requests_lapse()
    made["waiting"].refresh_from_db()
    made["waiting"] = services.booking_request_create(
        connection=made["waiting"].connection,
        starts_at=uk(WED + timedelta(days=10), 10, 15),
        actor=people.visits_admin_x,
    )
    # Not a request: a family's own booking is not listed.
    world.establishment.request_mode = RequestMode.FAMILY
    world.establishment.save()
    services.booking_create(
        connection=world.connection,
        lead=world.profile,
        starts_at=uk(WED + timedelta(days=12), 9, 30),
        aup_accepted=True,
    )
    return made


def url(world, **query: str) -> str:  # type: ignore[no-untyped-def]
    path = reverse("bookings:staff_requests", args=[world.establishment.code])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def states_shown(content: str) -> list[str]:
    import re

    return re.findall(r'data-state="([a-z]+)"', content)


def test_an_officer_sees_every_request_and_what_became_of_it(  # type: ignore[no-untyped-def]
    client, world, people, requests_made, django_assert_max_num_queries
) -> None:
    client.force_login(people.officer_x)
    with django_assert_max_num_queries(8):
        response = client.get(url(world))
    content = response.content.decode()
    assert response.status_code == 200
    # Newest first: the re-entered request, then the others in reverse order of entry
    # (the first "waiting" one was lapsed by the task too).
    assert states_shown(content) == [
        "waiting",
        "cancelled",
        "lapsed",
        "declined",
        "accepted",
        "lapsed",
    ]
    assert "Lapsed: not answered in time" in content and "Declined by the family" in content
    assert "Staff shortage" in content  # why a cancelled one was cancelled
    assert "Visitor accepted" in content and "Prisoner-declined" in content
    assert "until" in content  # a waiting request says until when
    assert world.profile.legal_name not in content  # the family's own booking


@pytest.mark.parametrize(
    ("state", "expected"),
    [("waiting", ["waiting"]), ("lapsed", ["lapsed", "lapsed"]), ("accepted", ["accepted"])],
)
def test_the_list_filters_by_outcome(client, world, people, requests_made, state, expected) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.officer_x)
    assert states_shown(client.get(url(world, state=state)).content.decode()) == expected


def test_a_filter_that_is_not_a_choice_is_said_and_shows_everything(  # type: ignore[no-untyped-def]
    client, world, people, requests_made
) -> None:
    client.force_login(people.officer_x)
    response = client.get(url(world, state="%3Cscript%3Ealert(1)%3C/script%3E"))
    content = response.content.decode()
    assert response.status_code == 400
    assert "not one of the choices" in content
    assert "<script>alert(1)" not in content
    assert len(states_shown(content)) == 6


def test_old_requests_drop_off_the_list(client, world, people, requests_made) -> None:  # type: ignore[no-untyped-def]
    declined = requests_made["declined"]
    long_ago = timezone.now() - timedelta(days=60)
    Booking.objects.filter(pk=declined.pk).update(created_at=long_ago, starts_at=long_ago)
    client.force_login(people.officer_x)
    assert "declined" not in states_shown(client.get(url(world)).content.decode())


def test_staff_elsewhere_and_families_cannot_see_the_list(  # type: ignore[no-untyped-def]
    client, world, people, requests_made
) -> None:
    for user in (people.officer_y, people.family_a):
        client.force_login(user)
        response = client.get(url(world))
        assert response.status_code in (403, 404)
        assert "Visitor accepted" not in response.content.decode()


def test_the_nav_links_to_it(client, world, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.officer_x)
    day = client.get(reverse("bookings:staff_day", args=[world.establishment.code]))
    assert url(world) in day.content.decode()
