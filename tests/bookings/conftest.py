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
            establishment=establishment, weekday=weekday, start_time=time(9, 30), end_time=time(11, 45)
        )
    terminals = [
        factories.TerminalFactory(establishment=establishment, name=f"Laptop {n}") for n in (1, 2)
    ]
    prisoner = factories.PrisonerFactory(establishment=establishment, prison_number="A1234BC")
    connection = factories.ConnectionFactory(
        prisoner=prisoner,
        visitor=factories.VisitorProfileFactory(
            user=factories.UserFactory(email="family.a@example.test"), legal_name="Jo Jones"
        ),
    )
    return World(
        establishment=establishment,
        terminals=terminals,
        prisoner=prisoner,
        profile=connection.visitor,
        connection=connection,
    )
