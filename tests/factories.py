"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

from datetime import date, time

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
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


def mfa_enabled(user):  # type: ignore[no-untyped-def]
    """Give ``user`` an activated authenticator app (TOTP), as staff must have."""
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, generate_totp_secret())
    return user


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    """Staff made here have two-factor authentication set up, as the
    StaffMfaRequiredMiddleware requires; pass ``mfa=False`` to test that rule."""

    class Meta:
        model = StaffMembership
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    establishment = factory.SubFactory(EstablishmentFactory)
    role = StaffRole.OFFICER

    @factory.post_generation
    def mfa(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            mfa_enabled(self.user)


# --- Contract models of identity, bookings and calls ----------------------------------
# Defaults describe the common happy case: an approved visitor with an approved
# connection, a confirmed booking. Tests override what they examine.

from datetime import datetime, timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from bookings.models import Booking, BookingStatus, BookingVisitor  # noqa: E402
from calls.models import Call  # noqa: E402
from identity.models import (  # noqa: E402
    Connection,
    ConnectionStatus,
    Dependant,
    Relationship,
    ReviewStatus,
    VerificationStatus,
    VisitorProfile,
)


class VisitorProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VisitorProfile

    user = factory.SubFactory(UserFactory)
    legal_name = factory.LazyAttribute(lambda o: f"{o.user.first_name} {o.user.last_name}")
    date_of_birth = date(1985, 6, 1)
    phone = "07700 900123"
    country_of_residence = "GB"
    biometric_consent = True
    verification_status = VerificationStatus.APPROVED


class DependantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dependant

    lead_visitor = factory.SubFactory(VisitorProfileFactory)
    first_name = "Kim"
    last_name = factory.Sequence(lambda n: f"Child{n}")
    date_of_birth = date(2016, 3, 1)
    status = ReviewStatus.APPROVED


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    visitor = factory.SubFactory(VisitorProfileFactory)
    prisoner = factory.SubFactory(PrisonerFactory)
    relationship = Relationship.PARTNER
    status = ConnectionStatus.APPROVED


def _next_slot() -> datetime:
    start = timezone.localtime() + timedelta(days=3)
    return start.replace(hour=10, minute=0, second=0, microsecond=0)


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Booking
        skip_postgeneration_save = True

    connection = factory.SubFactory(ConnectionFactory)
    prisoner = factory.SelfAttribute("connection.prisoner")
    lead_visitor = factory.SelfAttribute("connection.visitor")
    establishment = factory.SelfAttribute("prisoner.establishment")
    terminal = factory.SubFactory(
        TerminalFactory, establishment=factory.SelfAttribute("..establishment")
    )
    starts_at = factory.LazyFunction(_next_slot)
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(minutes=30))
    allowance_month = factory.LazyAttribute(
        lambda o: timezone.localtime(o.starts_at).date().replace(day=1)
    )
    status = BookingStatus.CONFIRMED

    @factory.post_generation
    def with_lead_visitor(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            BookingVisitor.objects.get_or_create(booking=self, profile=self.lead_visitor)


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    booking = factory.SubFactory(BookingFactory)


# --- identity ---------------------------------------------------------------------------
from identity.models import FaceEnrolment, IdentityCheck, ReviewStatus  # noqa: E402,F811


class IdentityCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdentityCheck

    profile = factory.SubFactory(
        VisitorProfileFactory, verification_status=VerificationStatus.SUBMITTED
    )
    status = ReviewStatus.PENDING


class FaceEnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FaceEnrolment

    encoding_encrypted = b""


# --- signing staff in -------------------------------------------------------------------
# Staff sessions count as two-factor passed only after the TOTP step of that session
# (purplevisits/session_rules.py). tests/conftest.py makes the test client's login() and
# force_login() a complete sign-in, TOTP step included, as every existing test meant;
# these helpers give the other cases.


def mark_two_factor_passed(client, user) -> None:  # type: ignore[no-untyped-def]
    """Record in ``client``'s session that ``user`` did the TOTP step in it."""
    from purplevisits.session_rules import mark_mfa_passed

    session = client.session
    mark_mfa_passed(session, user)
    session.save()


def login_staff(client, user) -> None:  # type: ignore[no-untyped-def]
    """Sign ``user`` in on ``client`` with the TOTP step done (what force_login now does)."""
    client.force_login(user)
    mark_two_factor_passed(client, user)


def login_without_two_factor(client, user) -> None:  # type: ignore[no-untyped-def]
    """Sign ``user`` in by password only: the session has not done the TOTP step
    (Django admin's own sign-in form did this before it was closed)."""
    client._pv_skip_two_factor = True
    try:
        client.force_login(user)
    finally:
        client._pv_skip_two_factor = False


def make_idle(client, seconds: float | None = None) -> None:  # type: ignore[no-untyped-def]
    """Move ``client``'s session's last activity back past the staff idle limit."""
    import time

    from django.conf import settings

    from purplevisits.session_rules import LAST_ACTIVITY

    session = client.session
    session[LAST_ACTIVITY] = time.time() - (seconds or settings.STAFF_IDLE_SECONDS + 120)
    session.save()


def socket_session(user, *, two_factor: bool = True):  # type: ignore[no-untyped-def]
    """A saved session signing ``user`` in, for a socket test's ``scope["session"]``
    (consumers read the session's rules, as the AuthMiddlewareStack scope gives them)."""
    from django.test import Client

    client = Client()
    login_without_two_factor(client, user)
    if two_factor:  # explicitly: benches use this without tests/conftest.py
        mark_two_factor_passed(client, user)
    return client.session


def use_private_storage(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Point the default (private) file storage at a fresh ``tmp_path/private`` and
    return it, so a test can see what was written (set before a live server forks)."""
    root = tmp_path / "private"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root
