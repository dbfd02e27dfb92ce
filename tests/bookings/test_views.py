from __future__ import annotations

from datetime import date

import pytest
from django.core import mail
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from bookings.models import Booking, BookingStatus
from establishments.models import BlockedDate, RequestMode, RolloutStage
from identity.models import ConnectionStatus
from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)
SLOT = "2026-11-04T09:30:00Z"
KEY = "a" * 32


def portal_url(world) -> str:  # type: ignore[no-untyped-def]
    return reverse("bookings:portal", args=[world.establishment.code])


def book_url(world) -> str:  # type: ignore[no-untyped-def]
    return reverse("bookings:book", args=[world.establishment.code])


def post_booking(client, world, **overrides):  # type: ignore[no-untyped-def]
    data = {"connection": world.connection.pk, "slot": SLOT, "aup": "on", "idempotency_key": KEY}
    data.update(overrides)
    return client.post(book_url(world), {k: v for k, v in data.items() if v is not None})


def test_portal_lists_free_slots_in_uk_time(client, world, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    with django_assert_max_num_queries(12):
        response = client.get(portal_url(world))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Wednesday 4 November" in content and "09:30–10:00" in content
    assert "Tuesday 3 November" not in content  # minimum notice
    assert f'value="{SLOT}"' in content
    assert "your time" not in content  # a UK family sees UK time only


def test_portal_shows_the_calls_left_each_month(client, world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.max_days_ahead = 40  # from 2 November: into December
    world.establishment.save()
    client.force_login(world.user)
    content = client.get(portal_url(world)).content.decode()
    assert "November <span>1 of 1 left</span>" in content
    assert "December <span>1 of 1 left</span>" in content
    # Someone else in the family books November: none left then, December untouched.
    factories.BookingFactory(
        establishment=world.establishment,
        prisoner=world.prisoner,
        terminal=world.terminals[0],
        starts_at=uk(date(2026, 11, 20), 10, 0),
    )
    content = client.get(portal_url(world)).content.decode()
    assert 'November <span class="muted">none left</span>' in content
    assert "December <span>1 of 1 left</span>" in content
    # A cancelled call gives it back.
    Booking.objects.update(status=BookingStatus.CANCELLED)
    assert "November <span>1 of 1 left</span>" in client.get(portal_url(world)).content.decode()


def test_portal_shows_the_familys_local_time_when_abroad(client, world) -> None:  # type: ignore[no-untyped-def]
    world.profile.country_of_residence = "FR"
    world.profile.save()
    client.force_login(world.user)
    content = client.get(portal_url(world)).content.decode()
    assert "your local time (Europe/Paris)" in content
    assert "your time Wed 10:30" in content
    world.profile.country_of_residence = "US"
    world.profile.save()
    content = client.get(portal_url(world)).content.decode()
    assert "We cannot tell your local time in US" in content


def test_portal_is_public_but_booking_needs_an_approved_family(client, world) -> None:  # type: ignore[no-untyped-def]
    response = client.get(portal_url(world))
    assert response.status_code == 200
    assert "Sign in</a> to book" in response.content.decode()
    assert 'type="radio"' not in response.content.decode()
    response = client.get(book_url(world) + f"?connection={world.connection.pk}&slot={SLOT}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_portal_closed_and_requests_only(client, world) -> None:  # type: ignore[no-untyped-def]
    world.establishment.rollout_stage = RolloutStage.STAFF_TRAINING
    world.establishment.save()
    assert "ESTABLISHMENT_NOT_LIVE" in client.get(portal_url(world)).content.decode()
    world.establishment.rollout_stage = RolloutStage.LIVE
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    assert (
        "the person in prison asks for video calls"
        in client.get(portal_url(world)).content.decode()
    )
    assert client.get("/visits/no-such-prison/").status_code == 404


def test_booking_through_the_pages(client, world) -> None:  # type: ignore[no-untyped-def]
    child = factories.DependantFactory(lead_visitor=world.profile, first_name="Kim")
    client.force_login(world.user)
    page = client.get(book_url(world) + f"?connection={world.connection.pk}&slot={SLOT}")
    content = page.content.decode()
    assert page.status_code == 200
    assert "Wednesday 4 November 2026, 09:30" in content
    assert f'name="dependants" value="{child.pk}"' in content
    assert "acceptable use policy" in content
    response = post_booking(client, world, dependants=str(child.pk))
    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("bookings:detail", args=[booking.reference])
    assert booking.visitors.count() == 2
    detail = client.get(response["Location"]).content.decode()
    assert "Your call is booked" in detail
    assert len(mail.outbox) == 1
    # A retried POST (same key) gives the same booking.
    again = post_booking(client, world, dependants=str(child.pk))
    assert again["Location"] == response["Location"]
    assert Booking.objects.count() == 1 and len(mail.outbox) == 1
    ics = client.get(reverse("bookings:calendar", args=[booking.reference]))
    assert ics["Content-Type"].startswith("text/calendar") and b"BEGIN:VEVENT" in ics.content
    listing = client.get(reverse("bookings:my_bookings")).content.decode()
    assert "Sam" in listing and "Wednesday 4 November, 09:30" in listing


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"slot": "2026-11-04T09:45:00Z"}, "SLOT_NOT_OFFERED"),
        ({"slot": "2026-10-01T09:30:00Z"}, "OUTSIDE_WINDOW"),
        ({"slot": "2026-11-03T09:30:00Z"}, "OUTSIDE_WINDOW"),
        ({"slot": "not a time"}, "SLOT_NOT_OFFERED"),
        ({"slot": "x" * 100_000}, "SLOT_NOT_OFFERED"),
        ({"aup": None}, "AUP_NOT_ACCEPTED"),
        ({"connection": "999999"}, "VISITOR_NOT_APPROVED"),
        ({"connection": "-1"}, "VISITOR_NOT_APPROVED"),
        ({"connection": "<script>"}, "VISITOR_NOT_APPROVED"),
    ],
)
def test_tampered_posts_are_refused_with_the_rule_and_write_nothing(
    client, world, overrides, code
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    response = post_booking(client, world, **overrides)
    assert response.status_code == 400
    assert f'data-code="{code}"' in response.content.decode()
    assert Booking.objects.count() == 0 and len(mail.outbox) == 0


def test_another_familys_connection_and_unapproved_visitors(client, world) -> None:  # type: ignore[no-untyped-def]
    other = factories.ConnectionFactory(prisoner=world.prisoner)
    pending = factories.ConnectionFactory(prisoner=world.prisoner, status=ConnectionStatus.PENDING)
    client.force_login(world.user)
    for overrides in (
        {"connection": other.pk},
        {"visitors": str(pending.visitor.pk)},
        {"dependants": str(factories.DependantFactory().pk)},
    ):
        response = post_booking(client, world, **overrides)
        assert 'data-code="VISITOR_NOT_APPROVED"' in response.content.decode(), overrides
    assert post_booking(client, world, visitors="1 OR 1=1").status_code == 400
    assert Booking.objects.count() == 0


def book_page(client, world):  # type: ignore[no-untyped-def]
    return client.get(book_url(world) + f"?connection={world.connection.pk}&slot={SLOT}")


def fill_slot(world) -> None:  # type: ignore[no-untyped-def]
    for terminal in world.terminals:
        other = factories.ConnectionFactory(
            status=ConnectionStatus.APPROVED,
            prisoner=factories.PrisonerFactory(establishment=world.establishment),
        )
        factories.BookingFactory(
            establishment=world.establishment,
            prisoner=other.prisoner,
            connection=other,
            lead_visitor=other.visitor,
            terminal=terminal,
            starts_at=uk(WED, 9, 30),
        )


@pytest.mark.parametrize("fault", ["slot_full", "allowance_used", "already_booked"])
def test_the_booking_page_says_at_once_when_the_call_cannot_be_booked(  # type: ignore[no-untyped-def]
    client, world, fault, django_assert_max_num_queries
) -> None:
    """A full slot or a used allowance is said before the form, not after it."""
    if fault == "slot_full":
        fill_slot(world)
        code, status = "SLOT_FULL", 409
    else:
        # The prisoner's one call this month, booked by someone else in the family...
        starts = uk(WED, 9, 30) if fault == "already_booked" else uk(date(2026, 11, 20), 10, 0)
        factories.BookingFactory(
            establishment=world.establishment,
            prisoner=world.prisoner,
            terminal=world.terminals[0],
            starts_at=starts,
        )
        code = "ALREADY_BOOKED" if fault == "already_booked" else "NO_ALLOWANCE"
        status = 400
    client.force_login(world.user)
    with django_assert_max_num_queries(8):  # the people who could join are not read
        page = book_page(client, world)
    content = page.content.decode()
    assert page.status_code == status
    assert f'data-code="{code}"' in content
    assert 'name="idempotency_key"' not in content  # no form to fill in for nothing
    assert "Choose another time" in content


def test_a_refusal_the_family_can_fix_keeps_the_form(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    response = post_booking(client, world, aup=None)
    assert 'data-code="AUP_NOT_ACCEPTED"' in response.content.decode()
    assert 'name="idempotency_key"' in response.content.decode()


def test_booking_page_and_booking_query_budget(  # type: ignore[no-untyped-def]
    client, world, django_assert_max_num_queries
) -> None:
    """The booking rush's two requests (bench/booking_rush.py): no per-slot or repeated
    reads. Counted with the session, user and account reads of every request; the first
    page reads the establishment's schedule (3 queries, then cached: 7), the booking
    asks whether the day is blocked, adds two lock statements on PostgreSQL, and sends
    its email here (eager Celery: 2 reads)."""
    client.force_login(world.user)
    with django_assert_max_num_queries(10):
        assert book_page(client, world).status_code == 200
    with django_assert_max_num_queries(15):
        assert post_booking(client, world).status_code == 302


def test_a_blocked_date_slot_is_refused(client, world) -> None:  # type: ignore[no-untyped-def]
    BlockedDate.objects.create(establishment=world.establishment, date=WED, reason="lockdown")
    client.force_login(world.user)
    response = post_booking(client, world)
    assert 'data-code="DATE_BLOCKED"' in response.content.decode()
    assert Booking.objects.count() == 0


def test_bad_idempotency_key_is_a_form_error(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    response = post_booking(client, world, idempotency_key="short")
    assert response.status_code == 400 and "This form has expired" in response.content.decode()
    assert Booking.objects.count() == 0


def test_family_cancels_from_the_pages_and_others_cannot_see_the_call(
    client, world, people
) -> None:  # type: ignore[no-untyped-def]
    booking = factories.BookingFactory(
        connection=world.connection, terminal=world.terminals[0], starts_at=uk(WED, 9, 30)
    )
    stranger = factories.VisitorProfileFactory().user
    client.force_login(stranger)
    for name in ("detail", "cancel", "calendar", "respond"):
        assert client.get(reverse(f"bookings:{name}", args=[booking.reference])).status_code == 404
    assert client.post(reverse("bookings:cancel", args=[booking.reference])).status_code == 404
    client.force_login(world.user)
    response = client.post(reverse("bookings:cancel", args=[booking.reference]))
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert "cancelled" in mail.outbox[-1].subject


def test_family_answers_a_request_in_the_portal(client, world, people) -> None:  # type: ignore[no-untyped-def]
    from bookings import services

    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    booking = services.booking_request_create(
        connection=world.connection, starts_at=uk(WED, 10, 15), actor=people.visits_admin_x
    )
    client.force_login(world.user)
    assert "Accept or decline" in client.get(reverse("bookings:my_bookings")).content.decode()
    url = reverse("bookings:respond", args=[booking.reference])
    refused = client.post(url, {"answer": "accept"})
    assert 'data-code="AUP_NOT_ACCEPTED"' in refused.content.decode()
    response = client.post(url, {"answer": "accept", "aup": "on"})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED and booking.aup_accepted_at


# --- Staff pages -----------------------------------------------------------------------


@pytest.fixture
def booking(world):  # type: ignore[no-untyped-def]
    return factories.BookingFactory(
        connection=world.connection, terminal=world.terminals[0], starts_at=uk(WED, 9, 30)
    )


def staff_urls(world, booking) -> dict[str, str]:  # type: ignore[no-untyped-def]
    code = world.establishment.code
    return {
        "day": reverse("bookings:staff_day", args=[code]) + "?date=2026-11-04",
        "week": reverse("bookings:staff_week", args=[code]) + "?start=2026-11-02",
        "cancel": reverse("bookings:staff_cancel", args=[code, booking.reference]),
        "move": reverse("bookings:staff_move", args=[code, booking.reference]),
        "blocked": reverse("bookings:staff_blocked_dates", args=[code]),
        "request": reverse("bookings:staff_request", args=[code]),
    }


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (
            "family_a",
            {"day": 403, "week": 403, "cancel": 403, "move": 403, "blocked": 403, "request": 403},
        ),
        # Staff at this establishment without the role are refused plainly (403);
        # staff of another establishment learn nothing about it (404).
        (
            "officer_x",
            {"day": 200, "week": 200, "cancel": 403, "move": 403, "blocked": 403, "request": 403},
        ),
        (
            "visits_admin_x",
            {"day": 200, "week": 200, "cancel": 200, "move": 200, "blocked": 200, "request": 200},
        ),
        (
            "visits_admin_y",
            {"day": 404, "week": 404, "cancel": 404, "move": 404, "blocked": 404, "request": 404},
        ),
        (
            "hq",
            {"day": 403, "week": 403, "cancel": 403, "move": 403, "blocked": 403, "request": 403},
        ),
    ],
)
def test_staff_page_permissions(client, world, people, booking, who, expected) -> None:  # type: ignore[no-untyped-def]
    client.force_login(getattr(people, who))
    got = {name: client.get(url).status_code for name, url in staff_urls(world, booking).items()}
    assert got == expected


def test_anonymous_staff_pages_go_to_sign_in(client, world, booking) -> None:  # type: ignore[no-untyped-def]
    for url in staff_urls(world, booking).values():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_officer_sees_the_day_read_only(client, world, people, booking) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.officer_x)
    content = client.get(staff_urls(world, booking)["day"]).content.decode()
    assert "A1234BC" in content and "Laptop 1" in content
    assert "Cancel</a>" not in content
    assert (
        client.post(staff_urls(world, booking)["cancel"], {"reason": "lockdown"}).status_code == 403
    )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


def test_day_sheet_query_count(
    client, world, people, booking, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        factories.BookingFactory(
            connection=factories.ConnectionFactory(
                prisoner=factories.PrisonerFactory(establishment=world.establishment)
            ),
            terminal=world.terminals[1],
            starts_at=uk(date(2026, 11, 4 + n), 10, 15),
        )
    client.force_login(people.visits_admin_x)
    with django_assert_max_num_queries(12):
        response = client.get(staff_urls(world, booking)["day"])
    assert response.status_code == 200 and "data-print" in response.content.decode()


def test_visits_admin_cancels_with_a_reason(client, world, people, booking) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    url = staff_urls(world, booking)["cancel"]
    assert client.post(url, {"reason": ""}).status_code == 400
    assert client.post(url, {"reason": "family"}).status_code == 400
    assert "Say why" in client.post(url, {"reason": "other"}).content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    response = client.post(url, {"reason": "staff_shortage", "note": "x" * 300})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED and booking.cancel_reason == "staff_shortage"
    assert AuditEntry.objects.filter(
        action=AuditAction.BOOKING_CANCEL, actor=people.visits_admin_x
    ).exists()
    assert client.post(url, {"reason": "other", "note": "y" * 301}).status_code == 400


def test_visits_admin_moves_a_call(client, world, people, booking) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    url = staff_urls(world, booking)["move"]
    assert "2026-11-05T09:30:00Z" in client.get(url).content.decode()
    assert client.post(url, {"slot": "2026-11-05T09:40:00Z"}).status_code == 400
    # The reason is required (and a note for "Other"): the family is told it.
    assert client.post(url, {"slot": "2026-11-05T09:30:00Z"}).status_code == 400
    response = client.post(url, {"slot": "2026-11-05T09:30:00Z", "reason": "other"})
    assert response.status_code == 400 and "Say why the call is moved" in response.content.decode()
    booking.refresh_from_db()
    assert booking.starts_at == uk(WED, 9, 30)
    response = client.post(url, {"slot": "2026-11-05T09:30:00Z", "reason": "staff_shortage"})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.starts_at == uk(date(2026, 11, 5), 9, 30)


def test_visits_admin_blocks_a_date(client, world, people, booking) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    url = staff_urls(world, booking)["blocked"]
    assert client.post(url, {"date": "not a date", "reason": "lockdown"}).status_code == 400
    assert client.post(url, {"date": "2026-11-04", "reason": "party"}).status_code == 400
    response = client.post(url, {"date": "2026-11-04", "reason": "lockdown", "note": "Search"})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert "Lockdown – Search" in mail.outbox[-1].body
    again = client.post(url, {"date": "2026-11-04", "reason": "lockdown"})
    assert again.status_code == 400 and "already exists" in again.content.decode()


def test_visits_admin_enters_a_prisoner_request(client, world, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    url = reverse("bookings:staff_request", args=[world.establishment.code])
    assert (
        "No prisoner with that number"
        in client.get(url + "?prison_number=Z9999ZZ").content.decode()
    )
    assert "letter, four digits" in client.get(url + "?prison_number=%3Cb%3E").content.decode()
    page = client.get(url + "?prison_number=a1234bc").content.decode()
    assert "Jo Jones" in page and SLOT in page
    data = {
        "prison_number": "A1234BC",
        "connection": world.connection.pk,
        "slot": SLOT,
        "idempotency_key": KEY,
    }
    assert client.post(url, {**data, "connection": "999"}).status_code == 400
    response = client.post(url, data)
    assert response.status_code == 302
    booking = Booking.objects.get()
    assert booking.status == BookingStatus.REQUESTED and booking.origin == "prisoner"
    assert "asked for a video call" in mail.outbox[-1].subject
    client.post(url, data)  # a retried POST
    assert Booking.objects.count() == 1


def test_admin_blocked_date_goes_through_the_service(admin_client, world, booking) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        reverse("admin:establishments_blockeddate_add"),
        {
            "establishment": world.establishment.pk,
            "date": "2026-11-04",
            "reason": "network_work",
            "note": "",
        },
    )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED and booking.cancel_reason == "technical_fault"
    assert AuditEntry.objects.filter(action=AuditAction.BLOCKED_DATE_ADD).count() == 1


def test_join_call_appears_only_inside_the_join_window(client) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from tests import factories

    soon = timezone.now() + timedelta(minutes=8)
    later = timezone.now() + timedelta(days=3)
    open_booking = factories.BookingFactory(starts_at=soon)
    closed_booking = factories.BookingFactory(
        connection=open_booking.connection, starts_at=later, terminal=open_booking.terminal
    )
    client.force_login(open_booking.lead_visitor.user)
    join_open = reverse("calls:join", args=[open_booking.reference])
    join_closed = reverse("calls:join", args=[closed_booking.reference])
    listing = client.get(reverse("bookings:my_bookings")).content.decode()
    assert join_open in listing and join_closed not in listing
    assert (
        join_open
        in client.get(reverse("bookings:detail", args=[open_booking.reference])).content.decode()
    )
    detail_closed = client.get(reverse("bookings:detail", args=[closed_booking.reference]))
    assert join_closed not in detail_closed.content.decode()
