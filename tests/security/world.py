"""A small world for the security tests: two establishments, two families, every role.

X and Y are establishments; family A has an approved connection to a prisoner at X, a
booking, a call, an identity check and a dependant; family B has the same at Y. The
terminal user is the account of a laptop at X. Everything the URL patterns need as
arguments is found here (``World.sample_kwargs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from establishments.models import StaffRole
from monitoring.models import Alert, AlertKind
from tests import factories

ROLES = (
    "anonymous",
    "family_a",
    "family_b",
    "terminal",
    "officer_x",
    "visits_admin_x",
    "officer_y",
    "hq",
)


@dataclass
class World:
    users: dict[str, object] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)

    def sample_kwargs(self) -> dict[str, str]:
        """A value for every URL keyword argument used in the project (see the matrix)."""
        o = self.objects
        return {
            "code": o["x"].code,
            "reference": str(o["booking_a"].reference),
            "call_id": str(o["call_a"].pk),
            "alert_id": str(o["alert_x"].pk),
            "check_id": str(o["check_a"].pk),
            "kind": "id",
            "dependant_id": str(o["dependant_a"].pk),
            "connection_id": str(o["connection_a"].pk),
            "action": "pause",
            "prison_number": o["connection_a"].prisoner.prison_number,
            # Django admin and allauth
            "object_id": str(o["x"].pk),
            "id": str(self.users["family_a"].pk),  # type: ignore[attr-defined]
            "content_type_id": "1",
            "app_label": "establishments",
            "url": "no-such-page/",
            "key": "not-a-real-key",
            "uidb36": "1",
        }


def build_world() -> World:
    x = factories.EstablishmentFactory(name="HMP Xanadu", code="xanadu")
    y = factories.EstablishmentFactory(name="HMP Yardley", code="yardley")

    def staff(email: str, establishment: object, role: str) -> object:
        return factories.StaffMembershipFactory(
            user=factories.UserFactory(email=email), establishment=establishment, role=role
        ).user

    terminal_user = factories.UserFactory(email="laptop.x@example.test")
    terminal_x = factories.TerminalFactory(establishment=x, user=terminal_user)
    terminal_y = factories.TerminalFactory(establishment=y)

    def family(email: str, establishment: object, terminal: object) -> dict[str, object]:
        user = factories.UserFactory(email=email)
        profile = factories.VisitorProfileFactory(user=user)
        prisoner = factories.PrisonerFactory(establishment=establishment)
        connection = factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
        starts = timezone.now() - timedelta(minutes=1)
        booking = factories.BookingFactory(
            connection=connection,
            terminal=terminal,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=30),
        )
        call = factories.CallFactory(booking=booking)
        check = factories.IdentityCheckFactory(profile=profile)
        dependant = factories.DependantFactory(lead_visitor=profile)
        return {
            "user": user,
            "profile": profile,
            "connection": connection,
            "booking": booking,
            "call": call,
            "check": check,
            "dependant": dependant,
        }

    a = family("family.a@example.test", x, terminal_x)
    b = family("family.b@example.test", y, terminal_y)
    alert_x = Alert.objects.create(establishment=x, call=a["call"], kind=AlertKind.choices[0][0])
    users = {
        "family_a": a["user"],
        "family_b": b["user"],
        "terminal": terminal_user,
        "officer_x": staff("officer.x@example.test", x, StaffRole.OFFICER),
        "visits_admin_x": staff("visits.x@example.test", x, StaffRole.VISITS_ADMIN),
        "officer_y": staff("officer.y@example.test", y, StaffRole.OFFICER),
        "hq": staff("hq@example.test", None, StaffRole.HQ),
    }
    objects: dict[str, object] = {"x": x, "y": y, "alert_x": alert_x, "terminal_x": terminal_x}
    for name, value in a.items():
        objects[f"{name}_a"] = value
    for name, value in b.items():
        objects[f"{name}_b"] = value
    return World(users=users, objects=objects)
