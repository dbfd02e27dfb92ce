"""Data and questions for tests/production, run inside the production environment:

    python -m tests.production.seed seed        → JSON: who signs in, and how
    python -m tests.production.seed now REF     → the booking starts now (joinable)
    python -m tests.production.seed call REF    → JSON: the booking's call

Run as its own process with the topology's environment (DEBUG=false, its PostgreSQL),
so the test process's own test database is never involved.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import time, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
django.setup()

from django.utils import timezone  # noqa: E402

from bench.server import signed_in_session  # noqa: E402
from bookings.models import Booking  # noqa: E402
from calls.models import Call  # noqa: E402
from tests import factories  # noqa: E402

PASSWORD = "correct-horse-battery-staple"  # noqa: S105


def seed() -> dict[str, str]:
    establishment = factories.EstablishmentFactory(name="HMP Production", code="prodtest")
    for weekday in range(7):
        factories.VisitSessionFactory(
            establishment=establishment,
            weekday=weekday,
            start_time=time(9, 30),
            end_time=time(10, 0),
        )
    terminal_user = factories.UserFactory()
    factories.TerminalFactory(establishment=establishment, user=terminal_user)
    prisoner = factories.PrisonerFactory(establishment=establishment, prison_number="A1111PR")
    family = factories.UserFactory(email="prod.family@example.test", password=PASSWORD)
    profile = factories.VisitorProfileFactory(user=family, legal_name="Jo Production")
    factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
    officer = factories.StaffMembershipFactory(establishment=establishment).user
    return {
        "code": establishment.code,
        "family_email": family.email,
        "family_password": PASSWORD,
        "terminal_session": signed_in_session(terminal_user),
        "officer_session": signed_in_session(officer, staff=True),
    }


def start_now(reference: str) -> dict[str, str]:
    booking = Booking.objects.get(reference=reference)
    starts = timezone.now() - timedelta(minutes=1)
    Booking.objects.filter(pk=booking.pk).update(
        starts_at=starts, ends_at=starts + timedelta(minutes=30)
    )
    return {"reference": reference}


def call_of(reference: str) -> dict[str, str]:
    call = Call.objects.filter(booking__reference=reference).first()
    if call is None:
        return {}
    return {
        "id": str(call.pk),
        "status": call.status,
        "end_reason": call.end_reason,
        "relay_id": call.relay_id or "",
    }


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    action = {"seed": seed, "now": start_now, "call": call_of}[command]
    print(json.dumps(action(*args)))  # type: ignore[operator]
