"""A live establishment with sessions, two terminals, a prisoner and an approved family.

Time is frozen on Monday 2 November 2026, 08:00 UK time (GMT): the booking window is
Wednesday 4 November to Monday 30 November.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time

import pytest

from establishments.models import Establishment, Prisoner, Terminal
from identity.models import Connection, VisitorProfile
from tests import factories

LONDON = zoneinfo.ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=LONDON)


def uk(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def fill_slot(world: World, starts_at: datetime) -> None:
    """Every laptop taken at ``starts_at`` by other families' calls (the slot is full)."""
    for terminal in world.terminals:
        factories.BookingFactory(
            connection=factories.ConnectionFactory(
                prisoner=factories.PrisonerFactory(establishment=world.establishment)
            ),
            terminal=terminal,
            starts_at=starts_at,
        )


def in_group(lead: VisitorProfile, member: VisitorProfile) -> VisitorProfile:
    """``member`` agreed to be in ``lead``'s group (identity.group)."""
    from identity.models import GroupMember, GroupMemberStatus

    GroupMember.objects.create(lead=lead, member=member, status=GroupMemberStatus.ACCEPTED)
    return member


@dataclass
class World:
    establishment: Establishment
    terminals: list[Terminal]
    prisoner: Prisoner
    profile: VisitorProfile
    connection: Connection

    @property
    def user(self):  # type: ignore[no-untyped-def]
        return self.profile.user


@pytest.fixture
def frozen(time_machine) -> datetime:  # type: ignore[no-untyped-def]
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture
def world(frozen, establishment_x) -> World:  # type: ignore[no-untyped-def]
    establishment = establishment_x
    for weekday in range(7):
        factories.VisitSessionFactory(
            establishment=establishment,
            weekday=weekday,
            start_time=time(9, 30),
            end_time=time(11, 45),
        )
    terminals = [
        factories.TerminalFactory(establishment=establishment, name=f"Laptop {n}") for n in (1, 2)
    ]
    prisoner = factories.PrisonerFactory(establishment=establishment, prison_number="A1234BC")
    connection = factories.ConnectionFactory(
        prisoner=prisoner,
        visitor=factories.VisitorProfileFactory(
            user=factories.UserFactory(email="jo.jones@example.test"), legal_name="Jo Jones"
        ),
    )
    return World(
        establishment=establishment,
        terminals=terminals,
        prisoner=prisoner,
        profile=connection.visitor,
        connection=connection,
    )


# Services whose emails are queued with transaction.on_commit. The test transaction never
# commits, so each call runs its on-commit callbacks when it returns (a refusal rolls
# its savepoint back first, so nothing is sent for it, as in production).
TOP_LEVEL_SERVICES = [
    "booking_create",
    "booking_cancel_by_family",
    "booking_request_create",
    "booking_request_accept",
    "booking_request_decline",
    "booking_requests_lapse",
    "booking_cancel_by_staff",
    "booking_move",
    "booking_move_by_family",
    "blocked_date_add",
    "booking_reminders_send",
]


@pytest.fixture(autouse=True)
def _emails_after_each_service(request, monkeypatch):  # type: ignore[no-untyped-def]
    marker = request.node.get_closest_marker("django_db")
    if (
        "transactional_db" in request.fixturenames
        or "live_server_url" in request.fixturenames
        or (marker is not None and marker.kwargs.get("transaction"))
    ):
        return  # real commits run the callbacks themselves
    if marker is None and "db" not in request.fixturenames:
        return
    from bookings import services

    capture = request.getfixturevalue("django_capture_on_commit_callbacks")
    for name in TOP_LEVEL_SERVICES:
        original = getattr(services, name)

        def wrapped(*args, __original=original, **kwargs):  # type: ignore[no-untyped-def]
            with capture(execute=True):
                return __original(*args, **kwargs)

        monkeypatch.setattr(services, name, wrapped)
