"""A family's data on request: everything about it in one archive (a subject access
request), or all of it erased (the same clean-up as account deletion, and more).

"The family" is one visitor's account: their profile, identity checks, dependants,
connections and group, and the bookings and calls they or their dependants were on.
Nothing about another family goes into an export: a booking's other visitors are the
lead's own group, named only when they are this visitor or their dependants.

Face encodings never leave the database in clear: the export says that they exist and
when they will be deleted. Both actions are in the audit log (ids only, no names).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from identity.models import (
    Connection,
    Dependant,
    EnrolmentSource,
    FaceEnrolment,
    GroupMember,
    IdentityCheck,
    VisitorProfile,
)

Actor = User | AbstractBaseUser | AnonymousUser

EXPORT_FORMAT_VERSION = 1
# A date of birth that says nothing about anyone (the field cannot be empty).
ERASED_DATE_OF_BIRTH = date(1900, 1, 1)


class FamilyEraseRefused(Exception):
    """Erasing now would break something (a call is on): ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def family_bookings(profile: VisitorProfile) -> QuerySet[Any]:
    """Every booking the visitor led or was on, or one of their dependants was on."""
    from bookings.models import Booking

    return (
        Booking.objects.filter(
            Q(lead_visitor=profile)
            | Q(visitors__profile=profile)
            | Q(visitors__dependant__lead_visitor=profile)
        )
        .distinct()
        .order_by("starts_at", "pk")
    )


def family_live_calls(profile: VisitorProfile) -> QuerySet[Any]:
    from calls.models import Call, CallStatus

    return Call.objects.filter(
        booking__in=family_bookings(profile).values("pk"),
        status__in=[CallStatus.LIVE, CallStatus.PAUSED],
    )


def _encoding_note(enrolments: list[FaceEnrolment], last_call: datetime | None) -> dict[str, Any]:
    if not enrolments:
        return {"exists": False}
    retention = timedelta(days=settings.IDENTITY_ENCODING_RETENTION_DAYS)
    created = min(e.created_at for e in enrolments)
    used = max((e.last_used_at for e in enrolments if e.last_used_at), default=None)
    latest_use = max(value for value in (created, used, last_call) if value)
    deleted_by = latest_use + retention
    precall_days = settings.IDENTITY_PRECALL_ENCODING_DAYS

    def each_deleted_by(enrolment: FaceEnrolment) -> datetime:
        if enrolment.source == EnrolmentSource.PRECALL:
            return min(deleted_by, enrolment.created_at + timedelta(days=precall_days))
        return deleted_by

    return {
        "exists": True,
        "stored": "encrypted; not included in this export",
        # Made from: the selfie, the photo ID when its face matched the selfie, and the
        # camera check before a call when the visitor chose it.
        "made_from": [str(e.get_source_display()) for e in enrolments],
        "created_at": _when(created),
        "last_used_at": _when(used),
        "deleted_by": _when(deleted_by),
        "deleted_when": (
            f"{settings.IDENTITY_ENCODING_RETENTION_DAYS} days after the last completed call "
            "(the date above unless there is another call), at once if consent to face "
            "matching is withdrawn or the account is deleted; the one from the camera check "
            f"before a call {precall_days} days after it was made"
        ),
        "each": [
            {
                "made_from": str(e.get_source_display()),
                "created_at": _when(e.created_at),
                "deleted_by": _when(each_deleted_by(e)),
            }
            for e in enrolments
        ],
    }


def _image(archive: zipfile.ZipFile, name: str | None, arcname: str) -> str | None:
    """Copy a private image into the archive; its name there, or None if it is gone."""
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as file:
            archive.writestr(arcname, file.read())
    except OSError:
        return None
    return arcname


def _family_data(profile: VisitorProfile, archive: zipfile.ZipFile) -> dict[str, Any]:
    from bookings.models import BookingStatus, BookingVisitor
    from calls.models import Call, CallEvent

    user = profile.user
    dependants = list(Dependant.objects.filter(lead_visitor=profile).order_by("pk"))
    dependant_ids = {dependant.pk for dependant in dependants}
    bookings = list(
        family_bookings(profile).select_related("establishment", "prisoner", "lead_visitor")
    )
    visitors = BookingVisitor.objects.filter(booking__in=[b.pk for b in bookings])
    party: dict[int, list[str]] = {}
    others: dict[int, int] = {}
    for row in visitors.values("booking_id", "profile_id", "dependant_id"):
        if row["profile_id"] == profile.pk:
            party.setdefault(row["booking_id"], []).append("you")
        elif row["dependant_id"] in dependant_ids:
            name = next(str(d) for d in dependants if d.pk == row["dependant_id"])
            party.setdefault(row["booking_id"], []).append(name)
        else:
            others[row["booking_id"]] = others.get(row["booking_id"], 0) + 1
    calls = {
        call.booking_id: call for call in Call.objects.filter(booking__in=[b.pk for b in bookings])
    }
    events: dict[Any, list[dict[str, Any]]] = {}
    for event in CallEvent.objects.filter(call__in=list(calls.values())).order_by(
        "created_at", "pk"
    ):
        events.setdefault(event.call_id, []).append(
            {
                "at": _when(event.created_at),
                "what": str(event.get_kind_display()),
                "who": event.role_label,
                "reason": event.reason_label,
            }
        )
    last_calls = BookingVisitor.objects.filter(booking__status=BookingStatus.COMPLETED)
    last_call = last_calls.filter(profile=profile).aggregate(at=Max("booking__starts_at"))["at"]
    enrolments: dict[tuple[int | None, int | None], list[FaceEnrolment]] = defaultdict(list)
    for e in FaceEnrolment.objects.filter(
        Q(profile=profile) | Q(dependant__in=dependants)
    ).order_by("pk"):
        enrolments[(e.profile_id, e.dependant_id)].append(e)

    checks = []
    for check in IdentityCheck.objects.filter(profile=profile).order_by("submitted_at", "pk"):
        deleted_by = (
            check.decided_at + timedelta(days=settings.IDENTITY_ID_IMAGE_RETENTION_DAYS)
            if check.decided_at and not check.images_deleted_at
            else None
        )
        checks.append(
            {
                "submitted_at": _when(check.submitted_at),
                "face_match": str(check.get_face_result_display()),
                "face_distance": check.face_distance,
                "face_tolerance": check.face_tolerance,
                "decision": str(check.get_status_display()),
                "decided_at": _when(check.decided_at),
                "decision_reason": check.decision_reason,
                "id_image": _image(archive, check.id_image.name, f"images/check-{check.pk}-id.jpg"),
                "selfie": _image(
                    archive, check.selfie_image.name, f"images/check-{check.pk}-selfie.jpg"
                ),
                "images_deleted_at": _when(check.images_deleted_at),
                "images_deleted_by": _when(deleted_by),
            }
        )
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": _when(timezone.now()),
        "account": {
            "email": user.email,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
            "is_active": user.is_active,
        },
        "profile": {
            "legal_name": profile.legal_name,
            "date_of_birth": _when(profile.date_of_birth),
            "phone": profile.phone,
            "country_of_residence": profile.country_of_residence,
            "verification_status": str(profile.get_verification_status_display()),
            "created_at": _when(profile.created_at),
            "updated_at": _when(profile.updated_at),
        },
        "consent": {
            "face_matching": profile.biometric_consent,
            "changed_at": _when(profile.consent_changed_at),
            "notice_version": profile.consent_notice_version,
            "acceptable_use_policy_accepted": [
                {"booking": b.short_reference_display, "at": _when(b.aup_accepted_at)}
                for b in bookings
                if b.aup_accepted_at and b.lead_visitor_id == profile.pk
            ],
        },
        "face_encoding": _encoding_note(enrolments.get((profile.pk, None), []), last_call),
        "identity_checks": checks,
        "dependants": [
            {
                "first_name": d.first_name,
                "last_name": d.last_name,
                "date_of_birth": _when(d.date_of_birth),
                "status": str(d.get_status_display()),
                "face_check": str(d.get_face_result_display()),
                "decided_at": _when(d.decided_at),
                "decision_reason": d.decision_reason,
                "added_at": _when(d.created_at),
                "photo": _image(archive, d.photo.name, f"images/dependant-{d.pk}.jpg"),
                "face_encoding": _encoding_note(enrolments.get((None, d.pk), []), None),
            }
            for d in dependants
        ],
        "connections": [
            {
                "prison_number": c.prisoner.prison_number,
                "prisoner": f"{c.prisoner.first_name} {c.prisoner.last_name}",
                "prison": c.prisoner.establishment.name,
                "relationship": str(c.get_relationship_display()),
                "status": str(c.get_status_display()),
                "requested_at": _when(c.requested_at),
                "decided_at": _when(c.decided_at),
                "decision_reason": c.decision_reason,
            }
            for c in Connection.objects.filter(visitor=profile)
            .select_related("prisoner__establishment")
            .order_by("requested_at", "pk")
        ],
        "group": {
            "people_you_invited": [
                {
                    "name": g.member.legal_name,
                    "status": str(g.get_status_display()),
                    "invited_at": _when(g.invited_at),
                    "accepted_at": _when(g.accepted_at),
                }
                for g in GroupMember.objects.filter(lead=profile).select_related("member")
            ],
            "groups_you_are_in": [
                {
                    "lead": g.lead.legal_name,
                    "status": str(g.get_status_display()),
                    "invited_at": _when(g.invited_at),
                    "accepted_at": _when(g.accepted_at),
                }
                for g in GroupMember.objects.filter(member=profile).select_related("lead")
            ],
        },
        "bookings": [
            {
                "reference": b.short_reference_display,
                "prison": b.establishment.name,
                "prison_number": b.prisoner.prison_number,
                "starts_at": _when(b.starts_at),
                "ends_at": _when(b.ends_at),
                "status": str(b.get_status_display()),
                "booked_by": "you" if b.lead_visitor_id == profile.pk else "the group's lead",
                "your_family_on_the_call": party.get(b.pk, []),
                "other_visitors_in_the_group": others.get(b.pk, 0),
                "created_at": _when(b.created_at),
                "cancelled_at": _when(b.cancelled_at),
                "cancel_reason": str(b.get_cancel_reason_display()) if b.cancel_reason else "",
                "call": _call_data(calls.get(b.pk), events),
            }
            for b in bookings
        ],
    }


def _call_data(call: Any, events: dict[Any, list[dict[str, Any]]]) -> dict[str, Any] | None:
    if call is None:
        return None
    return {
        "status": call.status_label,
        "started_at": _when(call.started_at),
        "ended_at": _when(call.ended_at),
        "paused_seconds": call.paused_seconds,
        "events": events.get(call.pk, []),
    }


def family_export(*, profile: VisitorProfile, actor: Actor) -> bytes:
    """A zip of ``family.json`` (everything about the family) and their images."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        data = _family_data(profile, archive)
        archive.writestr(
            "family.json", json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
        )
        archive.writestr(
            "README.txt",
            "family.json holds everything Purple Visits keeps about this account; the\n"
            "images folder holds its photos. Face encodings are described, not included.\n",
        )
    with transaction.atomic():
        audit_record(
            actor=actor,  # type: ignore[arg-type]
            action=AuditAction.FAMILY_EXPORT,
            target=profile,
            detail={"images": sum(name.startswith("images/") for name in _names(buffer))},
        )
    return buffer.getvalue()


def _names(buffer: io.BytesIO) -> list[str]:
    with zipfile.ZipFile(buffer) as archive:
        return archive.namelist()


@transaction.atomic
def family_erase(*, profile: VisitorProfile, actor: Actor) -> dict[str, Any]:
    """Erase the family: what account deletion does (photos, encodings, the account or
    its personal details, open connections revoked), plus dates of birth, decision notes
    and group memberships; future bookings are cancelled. Bookings and calls that took
    place stay for the prison's records, with the visitor anonymised. Refused while one
    of the family's calls is on. Returns counts for the person who asked (no names)."""
    from allauth.mfa.models import Authenticator

    from bookings.models import ACTIVE_STATUSES
    from bookings.services import booking_cancel_by_family
    from identity.services import account_delete

    profile = VisitorProfile.objects.select_for_update().select_related("user").get(pk=profile.pk)
    if family_live_calls(profile).exists():
        raise FamilyEraseRefused(
            "CALL_LIVE",
            _("One of this family's calls is on now. Erase the family once it has ended."),
        )
    now = timezone.now()
    cancelled = 0
    for booking in family_bookings(profile).filter(
        lead_visitor=profile, status__in=ACTIVE_STATUSES, starts_at__gt=now
    ):
        booking_cancel_by_family(booking=booking, lead=profile, now=now)
        cancelled += 1
    user = profile.user
    user_id, profile_id = user.pk, profile.pk
    files = _count_files(profile)
    bookings_kept = family_bookings(profile).count()
    GroupMember.objects.filter(Q(lead=profile) | Q(member=profile)).delete()
    account_deleted = account_delete(user=user)
    if not account_deleted:
        # account_delete kept the rows the bookings refer to: empty what it left.
        VisitorProfile.objects.filter(pk=profile_id).update(
            date_of_birth=ERASED_DATE_OF_BIRTH, country_of_residence="", consent_notice_version=""
        )
        Dependant.objects.filter(lead_visitor_id=profile_id).update(
            date_of_birth=ERASED_DATE_OF_BIRTH, decision_reason=""
        )
        IdentityCheck.objects.filter(profile_id=profile_id).update(decision_reason="")
        Connection.objects.filter(visitor_id=profile_id).update(decision_reason="")
        Authenticator.objects.filter(user_id=user_id).delete()
    summary = {
        "account_deleted": account_deleted,
        "bookings_kept_anonymised": 0 if account_deleted else bookings_kept,
        "future_bookings_cancelled": cancelled,
        "files_deleted": files,
    }
    audit_record(
        actor=actor,  # type: ignore[arg-type]
        action=AuditAction.FAMILY_ERASE,
        target=profile,  # its id stays in the log when the row itself is gone
        detail={"user_id": user_id, **summary},
    )
    return summary


def _count_files(profile: VisitorProfile) -> int:
    count = 0
    for id_image, selfie in IdentityCheck.objects.filter(profile=profile).values_list(
        "id_image", "selfie_image"
    ):
        count += bool(id_image) + bool(selfie)
    return count + Dependant.objects.filter(lead_visitor=profile).exclude(photo="").count()
