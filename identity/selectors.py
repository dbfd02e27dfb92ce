"""Reads of the identity app that span relations: review queues, who may see what,
and the approved face encodings that calls compare against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from establishments.models import Establishment, Prisoner
from establishments.selectors import has_role_at
from identity.crypto import decrypt_encoding
from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    EnrolmentSource,
    FaceEnrolment,
    IdentityCheck,
    ReviewStatus,
    VerificationStatus,
    VisitorProfile,
)

if TYPE_CHECKING:
    from bookings.models import Booking

OPEN_CONNECTION = [ConnectionStatus.PENDING, ConnectionStatus.APPROVED]


def profile_for(user: User | AnonymousUser) -> VisitorProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return VisitorProfile.objects.filter(user_id=user.pk or 0).first()


def _connected_at(establishment: Establishment) -> Exists:
    """A visitor (OuterRef "pk" = profile id) with an open connection at ``establishment``."""
    return Exists(
        Connection.objects.filter(
            visitor=OuterRef("pk"),
            prisoner__establishment=establishment,
            status__in=OPEN_CONNECTION,
        )
    )


def profiles_connected_to(establishment: Establishment) -> QuerySet[VisitorProfile]:
    return VisitorProfile.objects.filter(_connected_at(establishment))


def identity_checks_to_review(establishment: Establishment) -> QuerySet[IdentityCheck]:
    return (
        IdentityCheck.objects.filter(
            status=ReviewStatus.PENDING, profile__in=profiles_connected_to(establishment)
        )
        .select_related("profile")
        .order_by("submitted_at")
    )


def dependants_to_review(establishment: Establishment) -> QuerySet[Dependant]:
    return (
        Dependant.objects.filter(
            status=ReviewStatus.PENDING,
            lead_visitor__in=profiles_connected_to(establishment),
        )
        .exclude(photo="")
        .select_related("lead_visitor")
        .order_by("created_at")
    )


def connections_at(establishment: Establishment, statuses: list[str]) -> QuerySet[Connection]:
    return (
        Connection.objects.filter(prisoner__establishment=establishment, status__in=statuses)
        .select_related("visitor", "prisoner")
        .order_by("requested_at")
    )


def check_for_staff(establishment: Establishment, check_id: int) -> IdentityCheck | None:
    return (
        IdentityCheck.objects.filter(pk=check_id, profile__in=profiles_connected_to(establishment))
        .select_related("profile__user", "decided_by")
        .first()
    )


def dependant_for_staff(establishment: Establishment, dependant_id: int) -> Dependant | None:
    return (
        Dependant.objects.filter(
            pk=dependant_id, lead_visitor__in=profiles_connected_to(establishment)
        )
        .select_related("lead_visitor")
        .first()
    )


def connection_for_staff(establishment: Establishment, connection_id: int) -> Connection | None:
    return (
        Connection.objects.filter(pk=connection_id, prisoner__establishment=establishment)
        .select_related("visitor", "prisoner")
        .first()
    )


def staff_may_view_images_of(
    user: User | AnonymousUser, establishment: Establishment, profile: VisitorProfile
) -> bool:
    return (
        has_role_at(user, establishment, "visits_admin")
        and profiles_connected_to(establishment).filter(pk=profile.pk).exists()
    )


@dataclass
class Overview:
    """What the visitor's own page shows, and the next thing to do."""

    profile: VisitorProfile | None
    latest_check: IdentityCheck | None = None
    dependants: list[Dependant] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    next_step: str = ""


def visitor_overview(user: User) -> Overview:
    profile = profile_for(user)
    if profile is None:
        return Overview(profile=None, next_step="profile")
    latest = IdentityCheck.objects.filter(profile=profile).order_by("-submitted_at").first()
    dependants = list(Dependant.objects.filter(lead_visitor=profile).order_by("first_name"))
    connections = list(
        Connection.objects.filter(visitor=profile)
        .select_related("prisoner__establishment")
        .order_by("-requested_at")
    )
    if profile.biometric_consent is None:
        step = "consent"
    elif profile.verification_status in (
        VerificationStatus.NOT_STARTED,
        VerificationStatus.REJECTED,
    ):
        step = "identity"
    elif not any(c.status in OPEN_CONNECTION for c in connections):
        step = "connect"
    elif profile.verification_status == VerificationStatus.SUBMITTED or not any(
        c.status == ConnectionStatus.APPROVED for c in connections
    ):
        step = "wait"
    else:
        step = "book"
    return Overview(
        profile=profile,
        latest_check=latest,
        dependants=dependants,
        connections=connections,
        next_step=step,
    )


def staff_establishments(user: User) -> list[Establishment]:
    """Establishments the user works at, for the staff landing page (HQ: none listed
    here; HQ pages are national)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Establishment.objects.filter(staff_memberships__user=user.pk)
        .prefetch_related(Prefetch("staff_memberships"))
        .distinct()
        .order_by("name")
    )


# --- For calls ---------------------------------------------------------------------------------


def approved_encodings_for_booking(booking: Booking) -> list[np.ndarray]:
    """Decrypted encodings of every approved person on ``booking``'s family side.

    A visitor counts when their identity is approved and they have an approved
    connection to the booking's prisoner; a dependant when approved and their lead
    visitor has such a connection. People verified by hand (no consent) have no
    encoding and so are not in the list.
    """
    approved_connection = Connection.objects.filter(
        prisoner_id=booking.prisoner_id, status=ConnectionStatus.APPROVED
    )
    rows = list(booking.visitors.all())
    profile_ids = [row.profile_id for row in rows if row.profile_id]
    dependant_ids = [row.dependant_id for row in rows if row.dependant_id]
    approved_profiles = VisitorProfile.objects.filter(
        pk__in=profile_ids,
        verification_status=VerificationStatus.APPROVED,
        connections__in=approved_connection,
    ).values("pk")
    approved_dependants = Dependant.objects.filter(
        pk__in=dependant_ids,
        status=ReviewStatus.APPROVED,
        lead_visitor__connections__in=approved_connection,
    ).values("pk")
    enrolments = (
        FaceEnrolment.objects.filter(
            Q(profile_id__in=approved_profiles) | Q(dependant_id__in=approved_dependants)
        )
        # A pre-call check's encoding past its days is not used, even before the daily
        # retention job deletes it.
        .exclude(source=EnrolmentSource.PRECALL, created_at__lt=precall_enrolment_cutoff())
        .order_by("pk")
    )
    return [decrypt_encoding(bytes(enrolment.encoding_encrypted)) for enrolment in enrolments]


def precall_enrolment_cutoff() -> datetime:
    """Pre-call check encodings made before this are expired."""
    return timezone.now() - timedelta(days=settings.IDENTITY_PRECALL_ENCODING_DAYS)


def precall_enrolment_offered(profile: VisitorProfile | None) -> bool:
    """May this visitor add frames from the pre-call camera check to their face data?

    Only with consent to face matching, an approved identity and the encoding of their
    selfie, which every frame is compared with (so that nobody else can enrol)."""
    return (
        profile is not None
        and profile.biometric_consent is True
        and profile.verification_status == VerificationStatus.APPROVED
        and FaceEnrolment.objects.filter(profile=profile, source=EnrolmentSource.SELFIE).exists()
    )


def prisoner_encoding(prisoner: Prisoner) -> np.ndarray | None:
    enrolment = FaceEnrolment.objects.filter(prisoner=prisoner).first()
    return decrypt_encoding(bytes(enrolment.encoding_encrypted)) if enrolment else None


def prisoner_for_staff(establishment: Establishment, prison_number: str) -> Prisoner | None:
    return Prisoner.objects.filter(
        establishment=establishment, prison_number=prison_number.strip().upper()[:7]
    ).first()


PRISONERS_PER_PAGE = 50


def prisoners_with_enrolment(establishment: Establishment, query: str = "") -> QuerySet[Prisoner]:
    """The establishment's prisoners (matching ``query``: number or name), each with
    ``enrolled_at`` (None without a face photo); one query."""
    prisoners = Prisoner.objects.filter(establishment=establishment).annotate(
        enrolled_at=Subquery(
            FaceEnrolment.objects.filter(prisoner=OuterRef("pk")).values("created_at")[:1]
        )
    )
    words = query.split()[:4]
    for word in words:
        word = word[:40]
        prisoners = prisoners.filter(
            Q(prison_number__iexact=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
        )
    return prisoners.order_by("last_name", "first_name", "prison_number")


def prisoner_enrolled_at(prisoner: Prisoner):  # type: ignore[no-untyped-def]
    """When the prisoner's face was enrolled (None if never)."""
    return (
        FaceEnrolment.objects.filter(prisoner=prisoner).values_list("created_at", flat=True).first()
    )


CONNECTION_LIMIT_ALERT_DAYS = 7


def connection_limit_alerts(establishment: Establishment) -> list[object]:
    """Connection requests paused by the daily limit in the last week, filed at this
    establishment (it holds the prisoner with that number, or was the one chosen):
    audit entries, newest first, for the visits admins' identity page."""
    from audit.models import AuditAction, AuditEntry

    since = timezone.now() - timedelta(days=CONNECTION_LIMIT_ALERT_DAYS)
    return list(
        AuditEntry.objects.filter(
            establishment=establishment,
            action=AuditAction.CONNECTION_REQUESTS_PAUSED,
            created_at__gte=since,
        )[:50]
    )
