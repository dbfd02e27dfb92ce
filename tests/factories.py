"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

from datetime import date, time

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from establishments.models import (
    BlockedDate,
    BlockedDateReason,
    Establishment,
    EstablishmentKind,
    Prisoner,
    RolloutStage,
    StaffMembership,
    StaffRole,
    Terminal,
    VisitSession,
)

PASSWORD = "correct-horse-battery-staple"  # noqa: S105


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    username = factory.SelfAttribute("email")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")

    @factory.post_generation
    def password(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        self.set_password(extracted or PASSWORD)
        if create:
            self.save()

    @factory.post_generation
    def verified(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            EmailAddress.objects.get_or_create(
                user=self, email=self.email, defaults={"verified": True, "primary": True}
            )


class EstablishmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Establishment
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"HMP Testing {n}")
    code = factory.Sequence(lambda n: f"hmp-testing-{n}")
    kind = EstablishmentKind.MALE
    rollout_stage = RolloutStage.LIVE


class TerminalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Terminal

    establishment = factory.SubFactory(EstablishmentFactory)
    name = factory.Sequence(lambda n: f"Laptop {n}")


class VisitSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VisitSession

    establishment = factory.SubFactory(EstablishmentFactory)
    weekday = 0
    start_time = time(9, 30)
    end_time = time(11, 45)


class BlockedDateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlockedDate

    establishment = factory.SubFactory(EstablishmentFactory)
    date = factory.LazyFunction(date.today)
    reason = BlockedDateReason.LOCKDOWN


class PrisonerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prisoner

    prison_number = factory.Sequence(lambda n: f"A{n % 10000:04d}{chr(65 + (n // 10000) % 26)}B")
    first_name = "Sam"
    last_name = factory.Sequence(lambda n: f"Prisoner{n}")
    date_of_birth = date(1980, 1, 1)
    establishment = factory.SubFactory(EstablishmentFactory)


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    establishment = factory.SubFactory(EstablishmentFactory)
    role = StaffRole.OFFICER
