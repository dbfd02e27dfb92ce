"""Demo data for `make run`: one live establishment, its staff and one family.

Only for demonstrations and local development: the passwords are printed and public.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from allauth.account.models import EmailAddress
from django.contrib.auth.models import User
from django.db import transaction

from establishments.models import (
    Establishment,
    EstablishmentKind,
    Prisoner,
    RolloutStage,
    StaffMembership,
    StaffRole,
    Terminal,
    VisitSession,
    Weekday,
)
from establishments.services import establishment_set_stage

DEMO_PASSWORD = "purple-visits-demo"  # noqa: S105 - public demo credential
DEMO_ESTABLISHMENT_CODE = "askham-grange"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    description: str


@dataclass(frozen=True)
class DemoResult:
    establishment: Establishment
    accounts: list[DemoAccount]


def demo_user(
    email: str, *, first_name: str = "", last_name: str = "", superuser: bool = False
) -> User:
    user, created = User.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": first_name, "last_name": last_name}
    )
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
    user.email = email
    user.is_staff = user.is_superuser = superuser
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


@transaction.atomic
def seed_demo() -> DemoResult:
    establishment, _ = Establishment.objects.get_or_create(
        code=DEMO_ESTABLISHMENT_CODE,
        defaults={"name": "Askham Grange", "kind": EstablishmentKind.FEMALE},
    )
    establishment_set_stage(establishment=establishment, stage=RolloutStage.LIVE, note="Demo")

    for number in (1, 2):
        Terminal.objects.get_or_create(
            establishment=establishment,
            name=f"Visits hall laptop {number}",
            defaults={"location": "Visits hall"},
        )
    for weekday in (Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY, Weekday.SATURDAY):
        for start, end in ((time(9, 30), time(11, 45)), (time(14, 0), time(16, 15))):
            VisitSession.objects.get_or_create(
                establishment=establishment, weekday=weekday, start_time=start, end_time=end
            )

    prisoners = [
        ("A1234BC", "Sarah", "Jones", date(1985, 3, 14), "A wing"),
        ("B2345CD", "Michelle", "Smith", date(1990, 7, 2), "B wing"),
        ("C3456DE", "Amina", "Khan", date(1978, 11, 23), "A wing"),
    ]
    for prison_number, first, last, born, wing in prisoners:
        Prisoner.objects.update_or_create(
            prison_number=prison_number,
            defaults={
                "first_name": first,
                "last_name": last,
                "date_of_birth": born,
                "establishment": establishment,
                "location": wing,
            },
        )

    accounts = [
        DemoAccount("admin@demo.purplevisits.test", DEMO_PASSWORD, "Django admin (superuser)"),
        DemoAccount(
            "officer@demo.purplevisits.test", DEMO_PASSWORD, f"officer at {establishment.name}"
        ),
        DemoAccount(
            "visits@demo.purplevisits.test", DEMO_PASSWORD, f"visits admin at {establishment.name}"
        ),
        DemoAccount("hq@demo.purplevisits.test", DEMO_PASSWORD, "HQ, national read-only view"),
        DemoAccount("family@demo.purplevisits.test", DEMO_PASSWORD, "family visitor"),
    ]
    demo_user(accounts[0].email, first_name="Ada", last_name="Admin", superuser=True)
    for account, role in zip(
        accounts[1:4], (StaffRole.OFFICER, StaffRole.VISITS_ADMIN, StaffRole.HQ), strict=True
    ):
        user = demo_user(account.email, first_name=role.label.split()[0], last_name="Demo")
        StaffMembership.objects.get_or_create(
            user=user,
            establishment=None if role == StaffRole.HQ else establishment,
            defaults={"role": role},
        )
    demo_user(accounts[4].email, first_name="Jo", last_name="Jones")
    return DemoResult(establishment=establishment, accounts=accounts)
