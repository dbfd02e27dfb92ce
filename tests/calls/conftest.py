"""Fixtures for call tests: a booking whose slot is open now, and its three kinds of user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking
from tests import factories


@dataclass
class CallSetup:
    booking: Booking
    family: object
    terminal_user: object
    officer: object
    other_officer: object
    stranger: object


def make_setup(
    *, started_minutes_ago: float = 1, slot_minutes: int = 30, call_minutes: int = 30
) -> CallSetup:
    establishment = factories.EstablishmentFactory(call_minutes=call_minutes)
    other = factories.EstablishmentFactory()
    terminal_user = factories.UserFactory()
    terminal = factories.TerminalFactory(establishment=establishment, user=terminal_user)
    prisoner = factories.PrisonerFactory(establishment=establishment)
    connection = factories.ConnectionFactory(prisoner=prisoner)
    starts = timezone.now() - timedelta(minutes=started_minutes_ago)
    booking = factories.BookingFactory(
        connection=connection,
        terminal=terminal,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=slot_minutes),
    )
    officer = factories.StaffMembershipFactory(establishment=establishment).user
    other_officer = factories.StaffMembershipFactory(establishment=other).user
    return CallSetup(
        booking=booking,
        family=booking.lead_visitor.user,
        terminal_user=terminal_user,
        officer=officer,
        other_officer=other_officer,
        stranger=factories.UserFactory(),
    )


@pytest.fixture
def setup(db) -> CallSetup:  # type: ignore[no-untyped-def]
    return make_setup()


@pytest.fixture
def tsetup(transactional_db) -> CallSetup:  # type: ignore[no-untyped-def]
    return make_setup()
