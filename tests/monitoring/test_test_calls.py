"""Staff test calls: placed by a visits admin at the test-calls stage, joined by a staff
member through the real family pages, never counted in allowances or national figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from bookings.models import Booking, BookingStatus
from bookings.selectors import allowance_used
from calls.models import CallStatus
from establishments.models import RolloutStage
from monitoring.models import StaffTestCall
from monitoring.selectors import national_figures
from monitoring.services import TestCallRefused
from monitoring.services import test_call_place as place_test_call
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def testing_x(establishment_x):  # type: ignore[no-untyped-def]
    establishment_x.rollout_stage = RolloutStage.TEST_CALLS
    establishment_x.save()
    return establishment_x


@pytest.fixture
def laptop(testing_x):  # type: ignore[no-untyped-def]
    return factories.TerminalFactory(establishment=testing_x, user=factories.UserFactory())


def url(place) -> str:  # type: ignore[no-untyped-def]
    return reverse("monitoring:test_calls", args=[place.code])


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", 302),
        ("family_a", 403),
        ("officer_x", 403),
        ("visits_admin_x", 200),
        ("officer_y", 404),
        ("hq", 403),
    ],
)
def test_test_calls_page_access(client, people, testing_x, laptop, who, expected) -> None:  # type: ignore[no-untyped-def]
    if who != "anonymous":
        client.force_login(getattr(people, who))
    assert client.get(url(testing_x)).status_code == expected
    response = client.post(url(testing_x), {"terminal": laptop.pk, "family": people.officer_x.pk})
    assert response.status_code == expected if expected != 200 else 302
    assert StaffTestCall.objects.count() == (1 if who == "visits_admin_x" else 0)


def test_a_visits_admin_places_a_test_call_that_staff_join_as_the_family(
    client, people, testing_x, laptop
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    response = client.post(url(testing_x), {"terminal": laptop.pk, "family": people.officer_x.pk})
    assert response.status_code == 302
    test_call = StaffTestCall.objects.get()
    booking = test_call.booking
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.terminal == laptop
    assert booking.lead_visitor.user == people.officer_x
    assert booking.prisoner.last_name.startswith("Prisoner (staff test calls)")
    entry = AuditEntry.objects.get(action=AuditAction.TEST_CALL_PLACE)
    assert entry.actor == people.visits_admin_x
    assert entry.establishment == testing_x
    # The officer playing the family joins through the real family page.
    client.force_login(people.officer_x)
    page = client.get(url(testing_x))
    assert page.status_code == 403  # officers do not place test calls
    join = client.get(reverse("calls:join", args=[booking.reference]))
    assert join.status_code == 200
    assert "acceptable use policy" in join.content.decode().lower()
    joined = client.post(reverse("calls:join", args=[booking.reference]), {"accept": "on"})
    assert joined.status_code == 302
    room = client.get(joined["Location"])
    assert room.status_code == 200
    assert 'data-role="family"' in room.content.decode()
    # The laptop lists it like any call.
    client.force_login(laptop.user)
    assert str(booking.reference) in client.get(reverse("calls:terminal")).content.decode()
    # The dashboard marks it as a test call.
    client.force_login(people.officer_x)
    dashboard = client.get(reverse("monitoring:dashboard", args=[testing_x.code]))
    assert "test call" in dashboard.content.decode()


def test_test_calls_only_at_the_test_calls_stage(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    laptop = factories.TerminalFactory(establishment=establishment_x)
    client.force_login(people.visits_admin_x)
    assert "only while" in client.get(url(establishment_x)).content.decode()
    response = client.post(
        url(establishment_x), {"terminal": laptop.pk, "family": people.officer_x.pk}
    )
    assert response.status_code == 400
    assert "is not at the test-calls stage" in response.content.decode()
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose a laptop"),
        ({"terminal": "'; drop table", "family": "1"}, "Choose a laptop"),
        ({"terminal": "99999999", "family": "OFFICER"}, "Choose one of this establishment"),
        ({"terminal": "LAPTOP", "family": "FAMILY_A"}, "must be staff at this establishment"),
        ({"terminal": "LAPTOP", "family": "OFFICER_Y"}, "must be staff at this establishment"),
        ({"terminal": "OTHER_LAPTOP", "family": "OFFICER"}, "Choose one of this establishment"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    client, people, testing_x, laptop, establishment_y, data, message
) -> None:  # type: ignore[no-untyped-def]
    values = {
        "LAPTOP": laptop.pk,
        "OTHER_LAPTOP": factories.TerminalFactory(establishment=establishment_y).pk,
        "OFFICER": people.officer_x.pk,
        "OFFICER_Y": people.officer_y.pk,
        "FAMILY_A": people.family_a.pk,
    }
    posted = {key: values.get(value, value) for key, value in data.items()}
    client.force_login(people.visits_admin_x)
    response = client.post(url(testing_x), posted)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Booking.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.TEST_CALL_PLACE).exists()


def test_a_busy_laptop_is_refused(people, testing_x, laptop) -> None:  # type: ignore[no-untyped-def]
    real = factories.BookingFactory(
        connection__prisoner__establishment=testing_x,
        terminal=laptop,
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(minutes=25),
    )
    with pytest.raises(TestCallRefused) as refused:
        place_test_call(
            establishment=testing_x,
            actor=people.visits_admin_x,
            terminal_id=laptop.pk,
            family_user_id=people.officer_x.pk,
        )
    assert refused.value.code == "TERMINAL_BUSY"
    assert Booking.objects.get() == real


def test_test_calls_use_no_allowance_and_are_not_in_national_figures(
    people, testing_x, laptop
) -> None:  # type: ignore[no-untyped-def]
    real_call = factories.CallFactory(
        booking__connection__prisoner__establishment=testing_x,
        booking__starts_at=timezone.now() - timedelta(days=2),
        status=CallStatus.ENDED,
        started_at=timezone.now() - timedelta(days=2),
        ended_at=timezone.now() - timedelta(days=2) + timedelta(minutes=30),
        end_reason="completed",
    )
    real_prisoner = real_call.booking.prisoner
    month = real_call.booking.allowance_month
    used_before = allowance_used(real_prisoner.pk, month)
    placed = place_test_call(
        establishment=testing_x,
        actor=people.visits_admin_x,
        terminal_id=laptop.pk,
        family_user_id=people.visits_admin_x.pk,
    )
    assert placed.booking.prisoner != real_prisoner
    assert allowance_used(real_prisoner.pk, month) == used_before
    factories.CallFactory(
        booking=placed.booking,
        status=CallStatus.ENDED,
        started_at=timezone.now() - timedelta(minutes=20),
        ended_at=timezone.now(),
        end_reason="terminated",
    )
    figures = national_figures()
    assert figures.calls == 1
    assert figures.terminations == 0
    row = next(r for r in figures.establishments if r.establishment == testing_x)
    assert row.calls == 1
