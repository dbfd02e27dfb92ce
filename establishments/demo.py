"""Demo data for `make run`: one live establishment, its staff and one family.

Only for demonstrations and local development: the passwords are printed and public.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

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
# Staff must use two-factor authentication; demo staff share this public TOTP secret so
# a demonstration needs no phone: `python manage.py demo_code` prints the current code.
DEMO_TOTP_SECRET = "PURPLEVISITSDEMOPURPLEVISITSDEMO"  # noqa: S105 - public demo credential


DEMO_REFUSED_MESSAGE = (
    "The demo data has public passwords and a public two-factor secret: it is created "
    "only with DEBUG=true (a demonstration or development setup), never with DEBUG=false."
)


def require_demo_setup() -> None:
    """Refuse to create or reveal the public demo credentials outside DEBUG.

    Checked here as well as in the management commands, so that no other caller (a
    shell, a script, a future command) can put them on a production database.
    """
    if not settings.DEBUG:
        raise ImproperlyConfigured(DEMO_REFUSED_MESSAGE)


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


def demo_staff_mfa(user: User) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, DEMO_TOTP_SECRET)


def demo_code() -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(timezone.now().timestamp()) // 30))


@transaction.atomic
def seed_demo() -> DemoResult:
    require_demo_setup()
    establishment, _ = Establishment.objects.get_or_create(
        code=DEMO_ESTABLISHMENT_CODE,
        defaults={"name": "Askham Grange", "kind": EstablishmentKind.FEMALE},
    )
    establishment_set_stage(establishment=establishment, stage=RolloutStage.LIVE, note="Demo")
    # The visits team's contact (help page, portal): 01632 960xxx is Ofcom's drama range.
    demo_contact = {
        "town": "York",
        "visits_phone": "01632 960123",
        "visits_email": "visits.askham-grange@demo.purplevisits.test",
        "visits_hours": "Monday to Friday, 9am to 4pm",
        "visits_hours_cy": "Dydd Llun i ddydd Gwener, 9am tan 4pm",
    }
    unset = {
        field: value for field, value in demo_contact.items() if not getattr(establishment, field)
    }
    if unset:
        Establishment.objects.filter(pk=establishment.pk).update(**unset)

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
    demo_staff_mfa(
        demo_user(accounts[0].email, first_name="Ada", last_name="Admin", superuser=True)
    )
    for account, role in zip(
        accounts[1:4], (StaffRole.OFFICER, StaffRole.VISITS_ADMIN, StaffRole.HQ), strict=True
    ):
        user = demo_user(account.email, first_name=role.label.split()[0], last_name="Demo")
        demo_staff_mfa(user)
        StaffMembership.objects.get_or_create(
            user=user,
            establishment=None if role == StaffRole.HQ else establishment,
            defaults={"role": role},
        )
    demo_user(accounts[4].email, first_name="Jo", last_name="Jones")
    accounts += seed_identity_demo(establishment)
    accounts += seed_call_demo(establishment)
    return DemoResult(establishment=establishment, accounts=accounts)


# --- identity demo data ----------------------------------------------------------------


def seed_identity_demo(establishment: Establishment) -> list[DemoAccount]:
    """The demo family is approved to call A1234BC with one approved child; a second
    family's identity check waits for the visits admin. No face images are needed: the
    approved family was "checked by hand" and the waiting check has a placeholder
    photo drawn here."""
    import io

    from django.core.files.base import ContentFile
    from django.utils import timezone
    from PIL import Image, ImageDraw

    from identity.models import (
        Connection,
        ConnectionStatus,
        Dependant,
        FaceResult,
        IdentityCheck,
        Relationship,
        ReviewStatus,
        VerificationStatus,
        VisitorProfile,
    )

    now = timezone.now()
    prisoner = Prisoner.objects.get(prison_number="A1234BC")
    family = User.objects.get(username="family@demo.purplevisits.test")
    profile, _ = VisitorProfile.objects.update_or_create(
        user=family,
        defaults={
            "legal_name": "Jo Jones",
            "date_of_birth": date(1986, 5, 20),
            "phone": "07700 900001",
            "country_of_residence": "GB",
            "biometric_consent": False,
            "consent_changed_at": now,
            "verification_status": VerificationStatus.APPROVED,
        },
    )
    if not IdentityCheck.objects.filter(profile=profile).exists():
        IdentityCheck.objects.create(
            profile=profile,
            face_result=FaceResult.MANUAL,
            status=ReviewStatus.APPROVED,
            decided_at=now,
            decision_reason="Demo: checked by hand",
            images_deleted_at=now,
        )
    Connection.objects.get_or_create(
        visitor=profile,
        prisoner=prisoner,
        status=ConnectionStatus.APPROVED,
        defaults={"relationship": Relationship.PARENT, "decided_at": now},
    )
    Dependant.objects.get_or_create(
        lead_visitor=profile,
        first_name="Alfie",
        last_name="Jones",
        defaults={
            "date_of_birth": date(2014, 9, 3),
            "status": ReviewStatus.APPROVED,
            "face_result": FaceResult.MANUAL,
            "decided_at": now,
        },
    )

    waiting_email = "waiting@demo.purplevisits.test"
    waiting_user = demo_user(waiting_email, first_name="Sam", last_name="Waiting")
    waiting, _ = VisitorProfile.objects.get_or_create(
        user=waiting_user,
        defaults={
            "legal_name": "Sam Waiting",
            "date_of_birth": date(1979, 2, 11),
            "phone": "07700 900002",
            "country_of_residence": "GB",
            "biometric_consent": False,
            "consent_changed_at": now,
            "verification_status": VerificationStatus.SUBMITTED,
        },
    )
    if not IdentityCheck.objects.filter(profile=waiting).exists():

        def placeholder(text: str) -> ContentFile:
            image = Image.new("RGB", (480, 320), (244, 241, 248))
            ImageDraw.Draw(image).text((20, 150), text, fill=(75, 31, 120))
            out = io.BytesIO()
            image.save(out, format="JPEG")
            return ContentFile(out.getvalue(), name="demo.jpg")

        check = IdentityCheck(profile=waiting, face_result=FaceResult.MANUAL)
        check.id_image.save("id.jpg", placeholder("Demo photo ID (placeholder)"), save=False)
        check.selfie_image.save("selfie.jpg", placeholder("Demo selfie (placeholder)"), save=False)
        check.save()
    Connection.objects.get_or_create(
        visitor=waiting,
        prisoner=Prisoner.objects.get(prison_number="B2345CD"),
        status__in=[ConnectionStatus.PENDING, ConnectionStatus.APPROVED],
        defaults={"relationship": Relationship.SIBLING, "status": ConnectionStatus.PENDING},
    )
    return [
        DemoAccount(waiting_email, DEMO_PASSWORD, "family visitor whose identity check waits"),
    ]


# --- a call to try at once ---------------------------------------------------------------


def seed_call_demo(establishment: Establishment) -> list[DemoAccount]:
    """Laptop 1 gets its sign-in, and the demo family a call that opens within minutes.

    Real bookings need days of notice; the demo books straight into the database so that
    `make run` shows a call that can be joined now (family page and laptop page).
    """
    from datetime import timedelta

    from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, BookingVisitor
    from identity.models import Connection, ConnectionStatus

    email = "laptop1@demo.purplevisits.test"
    laptop = Terminal.objects.get(establishment=establishment, name="Visits hall laptop 1")
    if laptop.user is None:
        laptop.user = demo_user(email, first_name="Laptop 1")
        laptop.save(update_fields=["user"])
    account = DemoAccount(email, DEMO_PASSWORD, "prison laptop 1 (signs in to its calls)")

    connection = (
        Connection.objects.filter(
            visitor__user__email="family@demo.purplevisits.test",
            prisoner__prison_number="A1234BC",
            status=ConnectionStatus.APPROVED,
        )
        .select_related("visitor", "prisoner")
        .first()
    )
    if connection is None:
        return [account]
    now = timezone.now()
    length = timedelta(minutes=establishment.call_minutes)
    if Booking.objects.filter(
        connection=connection, status__in=ACTIVE_STATUSES, ends_at__gt=now
    ).exists():
        return [account]
    # Starts at the next five-minute mark, so the call can be joined straight away.
    starts_at = (now + timedelta(minutes=5 - now.minute % 5)).replace(second=0, microsecond=0)
    booking = Booking.objects.create(
        establishment=establishment,
        prisoner=connection.prisoner,
        terminal=laptop,
        lead_visitor=connection.visitor,
        connection=connection,
        starts_at=starts_at,
        ends_at=starts_at + length,
        allowance_month=timezone.localtime(starts_at, establishment.tz).date().replace(day=1),
        status=BookingStatus.CONFIRMED,
        aup_accepted_at=now,
    )
    BookingVisitor.objects.create(booking=booking, profile=connection.visitor)
    return [account]
