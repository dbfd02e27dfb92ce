"""Every write to the identity app: profiles, consent, identity checks, dependants,
connections, account deletion and retention.

Face matching is slow (dlib): it never runs inside a transaction. The task re-reads the
check, computes outside any lock, then records the result with a conditional update so
that a retried or duplicated task changes nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from datetime import date, datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import ProtectedError
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.models import AuditAction
from audit.services import audit_record
from establishments import defaults
from establishments.models import Establishment, Prisoner, PrisonerStatus, prison_number_validator
from identity import emails
from identity.crypto import encrypt_encoding
from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    EnrolmentSource,
    FaceEnrolment,
    FaceResult,
    IdentityCheck,
    ReviewStatus,
    VerificationStatus,
    VisitorProfile,
)
from purplevisits.observability import security_event

logger = logging.getLogger(__name__)

Actor = User | AbstractBaseUser | AnonymousUser


class IdentityError(Exception):
    """A refused identity action: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# One message for every way a connection request can fail to match a prisoner, so that
# the form cannot be used to find out who is in which prison or their date of birth.
CONNECTION_MISMATCH_MESSAGE = _(
    "We could not find a person in prison with those details. Check the prison number, "
    "last name, date of birth and prison, and try again."
)


def _delete_files_on_commit(*candidates: str | None) -> None:
    names = [name for name in candidates if name]

    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:  # already gone, or the disk is away: retention retries
                logger.warning("could not delete private file %s", name)

    if names:
        transaction.on_commit(delete)


def _adult_age() -> int:
    return defaults.ADULT_AGE


# --- Profile and consent -----------------------------------------------------------------


@transaction.atomic
def profile_save(
    *,
    user: User,
    legal_name: str,
    date_of_birth: date,
    phone: str,
    country_of_residence: str,
) -> VisitorProfile:
    """Create or update the visitor's profile. Name and date of birth are fixed once
    an identity check has been sent: changing them needs a new check."""
    profile = VisitorProfile.objects.select_for_update().filter(user=user).first()
    today = timezone.localdate()
    if profile is None:
        # Their emails are in the language they are using now, until they switch.
        profile = VisitorProfile(user=user, language=_current_language())
    elif profile.verification_status in (
        VerificationStatus.SUBMITTED,
        VerificationStatus.APPROVED,
    ) and (legal_name.strip() != profile.legal_name or date_of_birth != profile.date_of_birth):
        raise IdentityError(
            "PROFILE_LOCKED",
            gettext(
                "Your name and date of birth have been checked already and cannot be changed "
                "here. Contact the prison's visits team if they are wrong."
            ),
        )
    profile.legal_name = legal_name.strip()
    profile.date_of_birth = date_of_birth
    profile.phone = phone.strip()
    profile.country_of_residence = country_of_residence.strip().upper()
    if date_of_birth >= today:
        raise IdentityError(
            "BAD_DATE_OF_BIRTH",
            gettext("Your date of birth must be in the past."),
            field="date_of_birth",
        )
    if profile.age_on(today) < _adult_age():
        raise IdentityError(
            "UNDER_18",
            gettext(
                "You must be %(adult_age)s or over to have an account. A parent or carer can add "
                "you to their account as a dependant."
            )
            % {"adult_age": _adult_age()},
            field="date_of_birth",
        )
    profile.full_clean()
    profile.save()
    return profile


def _current_language() -> str:
    """The active language as one of settings.LANGUAGES ("cy" or "en-gb")."""
    active = (translation.get_language() or settings.LANGUAGE_CODE).lower()
    codes = [code for code, _name in settings.LANGUAGES]
    if active in codes:
        return active
    return next((code for code in codes if code.split("-")[0] == active.split("-")[0]), codes[0])


def visitor_profile_set_language(*, user: Actor, language: str) -> bool:
    """Keep the language a visitor chose for their emails and reminders. False when
    the language is not offered or they have no profile yet (their choice is then
    taken when the profile is created)."""
    user_id = getattr(user, "pk", None)
    if language not in dict(settings.LANGUAGES) or not isinstance(user_id, int):
        return False
    return bool(VisitorProfile.objects.filter(user_id=user_id).update(language=language))


def _delete_encodings_of(profile: VisitorProfile) -> int:
    deleted, _ = FaceEnrolment.objects.filter(profile=profile).delete()
    more, _ = FaceEnrolment.objects.filter(dependant__lead_visitor=profile).delete()
    return deleted + more


@transaction.atomic
def consent_set(*, profile: VisitorProfile, consent: bool) -> VisitorProfile:
    """Record the visitor's choice about face matching (and the notice they saw).

    Withdrawing consent deletes every stored face encoding of the visitor and their
    dependants at once, and turns any check still waiting for a face match into a
    manual one.
    """
    profile = VisitorProfile.objects.select_for_update().get(pk=profile.pk)
    now = timezone.now()
    withdrawing = profile.biometric_consent is True and not consent
    profile.biometric_consent = consent
    profile.consent_changed_at = now
    profile.consent_notice_version = settings.IDENTITY_CONSENT_NOTICE_VERSION if consent else ""
    profile.full_clean()
    profile.save(
        update_fields=[
            "biometric_consent",
            "consent_changed_at",
            "consent_notice_version",
            "updated_at",
        ]
    )
    if not consent:
        if withdrawing:
            _delete_encodings_of(profile)
        IdentityCheck.objects.filter(
            profile=profile, status=ReviewStatus.PENDING, face_result=FaceResult.PENDING
        ).update(face_result=FaceResult.MANUAL)
        Dependant.objects.filter(
            lead_visitor=profile, status=ReviewStatus.PENDING, face_result=FaceResult.PENDING
        ).update(face_result=FaceResult.MANUAL)
    return profile


# --- Identity checks -----------------------------------------------------------------------


@transaction.atomic
def identity_check_submit(
    *, profile: VisitorProfile, id_photo: ContentFile, selfie: ContentFile
) -> IdentityCheck:
    """Store a photo ID and selfie (already checked and re-encoded by identity.images)."""
    profile = VisitorProfile.objects.select_for_update().get(pk=profile.pk)
    if profile.biometric_consent is None:
        raise IdentityError(
            "CONSENT_NOT_CHOSEN",
            gettext("First choose whether your face may be checked by computer or by staff only."),
        )
    if profile.verification_status == VerificationStatus.APPROVED:
        raise IdentityError("ALREADY_APPROVED", gettext("Your identity has already been approved."))
    if IdentityCheck.objects.filter(profile=profile, status=ReviewStatus.PENDING).exists():
        raise IdentityError(
            "CHECK_PENDING",
            gettext(
                "Your photos are already waiting to be checked. You will get an email when "
                "prison staff have looked at them."
            ),
        )
    check = IdentityCheck(
        profile=profile,
        face_result=FaceResult.PENDING if profile.biometric_consent else FaceResult.MANUAL,
    )
    check.id_image.save("id.jpg", id_photo, save=False)
    check.selfie_image.save("selfie.jpg", selfie, save=False)
    check.full_clean()
    check.save()
    VisitorProfile.objects.filter(pk=profile.pk).update(
        verification_status=VerificationStatus.SUBMITTED, updated_at=timezone.now()
    )
    if profile.biometric_consent:
        from identity.tasks import run_identity_face_match

        check_id = check.pk
        transaction.on_commit(lambda: run_identity_face_match.delay(check_id))
    return check


def face_tolerance_for(profile: VisitorProfile) -> float:
    """Tolerance for an identity check.

    Identity is usually checked before any connection exists, so the national default
    applies; once the visitor has open connections, the strictest tolerance among those
    establishments applies (a match must satisfy every prison that will rely on it).
    """
    tolerances = list(
        Establishment.objects.filter(
            prisoners__connections__visitor=profile,
            prisoners__connections__status__in=[
                ConnectionStatus.PENDING,
                ConnectionStatus.APPROVED,
            ],
        ).values_list("face_match_tolerance", flat=True)
    )
    return min(tolerances) if tolerances else defaults.FACE_MATCH_TOLERANCE


SELFIE_PROBLEMS = {
    FaceResult.NO_FACE: (
        _(
            "We could not see a face in your selfie. Take a new one facing the camera, in good "
            "light, with nothing covering your face."
        )
    ),
    FaceResult.SEVERAL_FACES: (
        _("We found more than one face in your selfie. Take a new one with only you in it.")
    ),
}


def identity_check_run_face_match(*, check_id: int) -> str | None:
    """Find the faces and compare them; record the result once. Returns the result."""
    from identity import faces

    check = IdentityCheck.objects.select_related("profile").filter(pk=check_id).first()
    if check is None or check.face_result != FaceResult.PENDING:
        return None
    if check.profile.biometric_consent is not True or check.status != ReviewStatus.PENDING:
        # No consent (or withdrawn since): no face processing at all.
        IdentityCheck.objects.filter(pk=check.pk, face_result=FaceResult.PENDING).update(
            face_result=FaceResult.MANUAL
        )
        return FaceResult.MANUAL
    tolerance = face_tolerance_for(check.profile)
    with check.id_image.open("rb") as id_file, check.selfie_image.open("rb") as selfie_file:
        outcome = faces.match_id_and_selfie(id_file, selfie_file, tolerance=tolerance)

    with transaction.atomic():
        now = timezone.now()
        updated = IdentityCheck.objects.filter(
            pk=check.pk, face_result=FaceResult.PENDING, status=ReviewStatus.PENDING
        ).update(
            face_result=outcome.result,
            face_distance=outcome.distance,
            face_tolerance=tolerance,
            face_checked_at=now,
        )
        if not updated:
            return None
        profile = VisitorProfile.objects.select_for_update().get(pk=check.profile_id)
        if outcome.problem_with == "selfie":
            # A selfie without exactly one face is never worth a reviewer's time: it goes
            # straight back to the visitor with what to fix, and nothing is kept.
            # Stored and emailed to the visitor: in their language, not the worker's.
            with translation.override(check.profile.language):
                reason = str(SELFIE_PROBLEMS[FaceResult(outcome.result)])
            IdentityCheck.objects.filter(pk=check.pk).update(
                status=ReviewStatus.REJECTED,
                decided_at=now,
                decision_reason=reason,
                images_deleted_at=now,
                id_image="",
                selfie_image="",
            )
            _delete_files_on_commit(check.id_image.name, check.selfie_image.name)
            VisitorProfile.objects.filter(
                pk=profile.pk, verification_status=VerificationStatus.SUBMITTED
            ).update(verification_status=VerificationStatus.REJECTED)
            transaction.on_commit(
                lambda: emails.send_identity_decision(
                    check_id=check.pk, approved=False, reason=reason
                )
            )
        elif outcome.selfie_encoding is not None and profile.biometric_consent is True:
            # Kept encrypted; calls use them only once the visitor is approved. The
            # ID photo's face too when it matched the selfie: the call's face checks
            # compare with the nearer of the two. One that did not match (a reviewer
            # may still approve by eye) is not kept.
            FaceEnrolment.objects.update_or_create(
                profile=profile,
                source=EnrolmentSource.SELFIE,
                defaults={"encoding_encrypted": encrypt_encoding(outcome.selfie_encoding)},
            )
            if outcome.result == FaceResult.MATCH and outcome.id_encoding is not None:
                FaceEnrolment.objects.update_or_create(
                    profile=profile,
                    source=EnrolmentSource.ID_PHOTO,
                    defaults={"encoding_encrypted": encrypt_encoding(outcome.id_encoding)},
                )
            else:
                FaceEnrolment.objects.filter(
                    profile=profile, source=EnrolmentSource.ID_PHOTO
                ).delete()
    return outcome.result


def identity_check_mark_failed(*, check_id: int) -> bool:
    """The face match could not run (after retries): staff check by eye."""
    return bool(
        IdentityCheck.objects.filter(pk=check_id, face_result=FaceResult.PENDING).update(
            face_result=FaceResult.FAILED, face_checked_at=timezone.now()
        )
    )


def _decide_check(
    *, check: IdentityCheck, by: User, approve: bool, reason: str, establishment: Establishment
) -> IdentityCheck:
    reason = reason.strip()
    if not approve and not reason:
        raise IdentityError(
            "REASON_REQUIRED", gettext("Give a reason: the visitor sees it."), field="reason"
        )
    now = timezone.now()
    new_status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
    updated = IdentityCheck.objects.filter(pk=check.pk, status=ReviewStatus.PENDING).update(
        status=new_status, decided_at=now, decided_by=by, decision_reason=reason
    )
    if not updated:
        raise IdentityError(
            "ALREADY_DECIDED", gettext("Someone has already decided on this check.")
        )
    VisitorProfile.objects.filter(pk=check.profile_id).update(
        verification_status=VerificationStatus.APPROVED if approve else VerificationStatus.REJECTED,
        updated_at=now,
    )
    if not approve:
        # A rejected person has no approved face.
        FaceEnrolment.objects.filter(profile_id=check.profile_id).delete()
    audit_record(
        actor=by,
        action=AuditAction.IDENTITY_APPROVE if approve else AuditAction.IDENTITY_REJECT,
        establishment=establishment,
        target=check,
        reason=reason,
        detail={"face_result": check.face_result, "face_distance": check.face_distance},
    )
    check_id = check.pk
    transaction.on_commit(
        lambda: emails.send_identity_decision(check_id=check_id, approved=approve, reason=reason)
    )
    check.refresh_from_db()
    return check


@transaction.atomic
def identity_check_approve(
    *, check: IdentityCheck, by: User, establishment: Establishment, reason: str = ""
) -> IdentityCheck:
    return _decide_check(
        check=check, by=by, approve=True, reason=reason, establishment=establishment
    )


@transaction.atomic
def identity_check_reject(
    *, check: IdentityCheck, by: User, establishment: Establishment, reason: str
) -> IdentityCheck:
    return _decide_check(
        check=check, by=by, approve=False, reason=reason, establishment=establishment
    )


# --- Dependants ------------------------------------------------------------------------------


@transaction.atomic
def dependant_add(
    *,
    profile: VisitorProfile,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    photo: ContentFile,
) -> Dependant:
    profile = VisitorProfile.objects.select_for_update().get(pk=profile.pk)
    if profile.biometric_consent is None:
        raise IdentityError(
            "CONSENT_NOT_CHOSEN",
            gettext("First choose whether faces may be checked by computer or by staff only."),
        )
    if date_of_birth >= timezone.localdate():
        raise IdentityError(
            "BAD_DATE_OF_BIRTH",
            gettext("The date of birth must be in the past."),
            field="date_of_birth",
        )
    dependant = Dependant(
        lead_visitor=profile,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        date_of_birth=date_of_birth,
        face_result=FaceResult.PENDING if profile.biometric_consent else FaceResult.MANUAL,
    )
    dependant.photo.save("dependant.jpg", photo, save=False)
    dependant.full_clean()
    dependant.save()
    _queue_dependant_face_check(dependant)
    return dependant


def _queue_dependant_face_check(dependant: Dependant) -> None:
    if dependant.face_result == FaceResult.PENDING:
        from identity.tasks import run_dependant_face_check

        dependant_id = dependant.pk
        transaction.on_commit(lambda: run_dependant_face_check.delay(dependant_id))


@transaction.atomic
def dependant_replace_photo(*, dependant: Dependant, photo: ContentFile) -> Dependant:
    dependant = (
        Dependant.objects.select_for_update().select_related("lead_visitor").get(pk=dependant.pk)
    )
    if dependant.status != ReviewStatus.PENDING:
        raise IdentityError(
            "ALREADY_DECIDED",
            gettext("This person has already been checked; their photo is fixed."),
        )
    old = dependant.photo.name
    dependant.photo.save("dependant.jpg", photo, save=False)
    dependant.face_result = (
        FaceResult.PENDING if dependant.lead_visitor.biometric_consent else FaceResult.MANUAL
    )
    dependant.full_clean()
    dependant.save(update_fields=["photo", "face_result"])
    FaceEnrolment.objects.filter(dependant=dependant).delete()
    _delete_files_on_commit(old)
    _queue_dependant_face_check(dependant)
    return dependant


DEPENDANT_PHOTO_PROBLEMS = {
    FaceResult.NO_FACE: _(
        "We could not see a face in the photo. Upload a clear photo of their face."
    ),
    FaceResult.SEVERAL_FACES: (
        _("We found more than one face in the photo. Upload a photo with only them in it.")
    ),
}


def dependant_run_face_check(*, dependant_id: int) -> str | None:
    """One clear face in a dependant's photo: encode it (kept encrypted)."""
    from identity import faces

    dependant = Dependant.objects.select_related("lead_visitor").filter(pk=dependant_id).first()
    if dependant is None or dependant.face_result != FaceResult.PENDING or not dependant.photo:
        return None
    if dependant.lead_visitor.biometric_consent is not True:
        Dependant.objects.filter(pk=dependant.pk, face_result=FaceResult.PENDING).update(
            face_result=FaceResult.MANUAL
        )
        return FaceResult.MANUAL
    photo_name = dependant.photo.name
    with dependant.photo.open("rb") as photo:
        found = faces.find_one_face(photo)
    result = FaceResult.ONE_FACE if found.status == faces.FaceStatus.ONE else found.status
    with transaction.atomic():
        updated = Dependant.objects.filter(
            pk=dependant.pk, face_result=FaceResult.PENDING, photo=photo_name
        ).update(face_result=result)
        if not updated:
            return None
        if result == FaceResult.ONE_FACE and found.encoding is not None:
            FaceEnrolment.objects.update_or_create(
                dependant=dependant,
                defaults={
                    "encoding_encrypted": encrypt_encoding(found.encoding),
                    "source": EnrolmentSource.PHOTO,
                },
            )
        else:
            # Not kept: the visitor is asked for a better photo.
            Dependant.objects.filter(pk=dependant.pk).update(photo="")
            _delete_files_on_commit(photo_name)
    return result


def dependant_mark_failed(*, dependant_id: int) -> bool:
    return bool(
        Dependant.objects.filter(pk=dependant_id, face_result=FaceResult.PENDING).update(
            face_result=FaceResult.FAILED
        )
    )


def _decide_dependant(
    *, dependant: Dependant, by: User, approve: bool, reason: str, establishment: Establishment
) -> Dependant:
    reason = reason.strip()
    if not approve and not reason:
        raise IdentityError(
            "REASON_REQUIRED", gettext("Give a reason: the visitor sees it."), field="reason"
        )
    if approve and not dependant.photo:
        raise IdentityError(
            "NO_PHOTO",
            gettext("There is no usable photo of this person yet: it cannot be approved."),
        )
    updated = Dependant.objects.filter(pk=dependant.pk, status=ReviewStatus.PENDING).update(
        status=ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED,
        decided_at=timezone.now(),
        decided_by=by,
        decision_reason=reason,
    )
    if not updated:
        raise IdentityError(
            "ALREADY_DECIDED", gettext("Someone has already decided on this person.")
        )
    if not approve:
        FaceEnrolment.objects.filter(dependant=dependant).delete()
    audit_record(
        actor=by,
        action=AuditAction.DEPENDANT_APPROVE if approve else AuditAction.DEPENDANT_REJECT,
        establishment=establishment,
        target=dependant,
        reason=reason,
    )
    dependant_id = dependant.pk
    transaction.on_commit(
        lambda: emails.send_dependant_decision(
            dependant_id=dependant_id, approved=approve, reason=reason
        )
    )
    dependant.refresh_from_db()
    return dependant


@transaction.atomic
def dependant_approve(
    *, dependant: Dependant, by: User, establishment: Establishment, reason: str = ""
) -> Dependant:
    return _decide_dependant(
        dependant=dependant, by=by, approve=True, reason=reason, establishment=establishment
    )


@transaction.atomic
def dependant_reject(
    *, dependant: Dependant, by: User, establishment: Establishment, reason: str
) -> Dependant:
    return _decide_dependant(
        dependant=dependant, by=by, approve=False, reason=reason, establishment=establishment
    )


# --- Connections -------------------------------------------------------------------------------


def normalise_prison_number(value: str) -> str:
    return "".join(value.split()).upper()


# Wrong details are counted per account and per prison number, in the cache (Redis in
# production, shared by every web process; keys expire by themselves at the end of
# their window). A nonexistent prison number is counted exactly like a real one, so
# neither the answer nor the limit tells anyone who is in prison where.
CONNECTION_FAILURE_WINDOW_SECONDS = 24 * 60 * 60
CONNECTION_LIMIT_MESSAGE = _(
    "We cannot take this request now: too many requests with details that did not "
    "match have been made today. Try again tomorrow, or ask the prison's visits team "
    "for help."
)
CONNECTION_LIMIT_KIND = "connection_request_limit"


def _connection_failure_keys(*, profile: VisitorProfile, number: str) -> dict[str, str]:
    return {
        "account": f"identity:connection-failures:account:{profile.user_id}",
        "prison_number": f"identity:connection-failures:number:{number}",
    }


def _count_try(key: str, *, window: int = CONNECTION_FAILURE_WINDOW_SECONDS) -> int:
    """One more try in ``key``'s window (which starts at its first try): the new count.

    ``incr`` is atomic in Redis and keeps the key's expiry, so two requests sent at once
    get different counts and cannot both be the last allowed try."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=window)
        return 1


def _refund_try(key: str) -> None:
    """A try that turned out not to be a failure (matched, or refused before the lookup)."""
    with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing to give back
        cache.decr(key)


def _connection_limit_alert(
    *,
    profile: VisitorProfile,
    number: str,
    establishment: Establishment,
    limit: str,
    key: str,
    tries: int,
    request: HttpRequest | None,
) -> None:
    """Tell staff that a limit was reached: a security event every time, and once per
    window an audit entry filed at the establishment that holds the prisoner with that
    number (the visits admins see it on their identity page), or at the chosen one when
    no prisoner has that number."""
    security_event(
        "connection_request_limited",
        request=request,
        user_id=profile.user_id,
        limit=limit,
        prison_number=number,
        establishment=establishment.code,
        tries=tries,
    )
    if not cache.add(f"{key}:alerted", 1, timeout=CONNECTION_FAILURE_WINDOW_SECONDS):
        return
    prisoner = Prisoner.objects.filter(prison_number=number).select_related("establishment").first()
    counted = "this account" if limit == "account" else "this prison number"
    with transaction.atomic():
        audit_record(
            actor=profile.user,
            action=AuditAction.CONNECTION_REQUESTS_PAUSED,
            establishment=prisoner.establishment if prisoner is not None else establishment,
            target=prisoner,
            reason=(
                f"Connection requests paused: {tries} requests with details that did not "
                f"match in a day ({counted})."
            ),
            detail={
                "kind": CONNECTION_LIMIT_KIND,
                "limit": limit,
                "prison_number": number,
                "tries": tries,
                "chosen_establishment": establishment.code,
            },
        )


def connection_request(
    *,
    profile: VisitorProfile,
    prison_number: str,
    last_name: str,
    date_of_birth: date,
    establishment: Establishment,
    relationship: str,
    request: HttpRequest | None = None,
) -> Connection:
    """Ask to be connected to a prisoner. Any mismatch gets one generic error.

    At most ``IDENTITY_CONNECTION_FAILURES_PER_DAY`` mismatches per account and per
    prison number in 24 hours; past that every request is refused with one message,
    right details or not, until the window ends. ``request`` is only for the security
    log (address, path)."""
    number = normalise_prison_number(prison_number)
    try:
        prison_number_validator(number)
    except ValidationError:
        raise IdentityError(
            "BAD_PRISON_NUMBER",
            gettext("A prison number is a letter, four digits and two letters, e.g. A1234BC."),
            field="prison_number",
        ) from None
    limit: int = settings.IDENTITY_CONNECTION_FAILURES_PER_DAY
    keys = _connection_failure_keys(profile=profile, number=number)

    def alert(kind: str, tries: int) -> None:
        _connection_limit_alert(
            profile=profile,
            number=number,
            establishment=establishment,
            limit=kind,
            key=keys[kind],
            tries=tries,
            request=request,
        )

    def refuse(kind: str, tries: int) -> IdentityError:
        alert(kind, tries)
        return IdentityError("TOO_MANY_TRIES", str(CONNECTION_LIMIT_MESSAGE))

    # Each try is counted before the lookup and given back unless it was a mismatch.
    account_tries = _count_try(keys["account"])
    if account_tries > limit:
        raise refuse("account", account_tries)
    number_tries = _count_try(keys["prison_number"])
    if number_tries > limit:
        _refund_try(keys["account"])
        raise refuse("prison_number", number_tries)
    mismatch = False
    try:
        return _connection_create(
            profile=profile,
            number=number,
            last_name=last_name,
            date_of_birth=date_of_birth,
            establishment=establishment,
            relationship=relationship,
        )
    except IdentityError as error:
        mismatch = error.code == "NO_MATCH"
        if mismatch:
            for kind, tries in (("account", account_tries), ("prison_number", number_tries)):
                if tries == limit:  # this mismatch used the last try: staff hear of it now
                    alert(kind, tries)
        raise
    finally:
        if not mismatch:
            _refund_try(keys["account"])
            _refund_try(keys["prison_number"])


@transaction.atomic
def _connection_create(
    *,
    profile: VisitorProfile,
    number: str,
    last_name: str,
    date_of_birth: date,
    establishment: Establishment,
    relationship: str,
) -> Connection:
    # Lock the visitor so that two requests sent at once cannot both be the 6th.
    profile = VisitorProfile.objects.select_for_update().get(pk=profile.pk)
    pending = Connection.objects.filter(visitor=profile, status=ConnectionStatus.PENDING).count()
    if pending >= settings.IDENTITY_MAX_PENDING_CONNECTIONS:
        raise IdentityError(
            "TOO_MANY_PENDING",
            gettext(
                "You already have %(pending)s requests waiting for a prison to answer. You can "
                "send another when one of them has been answered."
            )
            % {"pending": pending},
        )
    prisoner = Prisoner.objects.filter(
        prison_number=number,
        last_name__iexact=last_name.strip(),
        date_of_birth=date_of_birth,
        establishment=establishment,
        status=PrisonerStatus.ACTIVE,
    ).first()
    if prisoner is None:
        raise IdentityError("NO_MATCH", str(CONNECTION_MISMATCH_MESSAGE))
    if Connection.objects.filter(
        visitor=profile,
        prisoner=prisoner,
        status__in=[ConnectionStatus.PENDING, ConnectionStatus.APPROVED],
    ).exists():
        raise IdentityError(
            "ALREADY_REQUESTED", gettext("You have already asked to be connected to this person.")
        )
    connection = Connection(visitor=profile, prisoner=prisoner, relationship=relationship)
    connection.full_clean()
    connection.save()
    return connection


def _decide_connection(
    *,
    connection: Connection,
    by: User,
    establishment: Establishment,
    from_statuses: list[str],
    to_status: str,
    reason: str,
    action: str,
) -> Connection:
    reason = reason.strip()
    if to_status != ConnectionStatus.APPROVED and not reason:
        raise IdentityError(
            "REASON_REQUIRED", gettext("Give a reason: the visitor sees it."), field="reason"
        )
    if to_status == ConnectionStatus.APPROVED and not connection.visitor.is_approved:
        raise IdentityError(
            "VISITOR_NOT_VERIFIED",
            gettext("Approve the visitor's identity before approving this connection."),
        )
    updated = Connection.objects.filter(pk=connection.pk, status__in=from_statuses).update(
        status=to_status, decided_at=timezone.now(), decided_by=by, decision_reason=reason
    )
    if not updated:
        raise IdentityError(
            "ALREADY_DECIDED",
            gettext("This request has changed since you opened it: reload the page."),
        )
    audit_record(
        actor=by, action=action, establishment=establishment, target=connection, reason=reason
    )
    connection_id = connection.pk
    transaction.on_commit(
        lambda: emails.send_connection_decision(connection_id=connection_id, status=to_status)
    )
    connection.refresh_from_db()
    return connection


@transaction.atomic
def connection_approve(
    *, connection: Connection, by: User, establishment: Establishment, reason: str = ""
) -> Connection:
    return _decide_connection(
        connection=connection,
        by=by,
        establishment=establishment,
        from_statuses=[ConnectionStatus.PENDING],
        to_status=ConnectionStatus.APPROVED,
        reason=reason,
        action=AuditAction.CONNECTION_APPROVE,
    )


@transaction.atomic
def connection_reject(
    *, connection: Connection, by: User, establishment: Establishment, reason: str
) -> Connection:
    return _decide_connection(
        connection=connection,
        by=by,
        establishment=establishment,
        from_statuses=[ConnectionStatus.PENDING],
        to_status=ConnectionStatus.REJECTED,
        reason=reason,
        action=AuditAction.CONNECTION_REJECT,
    )


def end_live_calls_for_revoked_connection(connection_id: int) -> None:
    """Ask the calls app to end any live call on this connection.

    The calls app owns its call state; it may not provide the hook (yet), in which case
    there is nothing to end from here. Looked up at run time so that identity does not
    depend on calls at import time.
    """
    import importlib

    try:
        call_services = importlib.import_module("calls.services")
    except ImportError:
        return
    hook = getattr(call_services, "call_end_for_revoked_connection", None)
    if hook is not None:
        hook(connection_id=connection_id)


@transaction.atomic
def connection_revoke(
    *, connection: Connection, by: User, establishment: Establishment, reason: str
) -> Connection:
    """Revoke at once: bookings code stops treating the visitor as approved as soon as
    this commits, and any live call on the connection is ended right after."""
    connection = _decide_connection(
        connection=connection,
        by=by,
        establishment=establishment,
        from_statuses=[ConnectionStatus.PENDING, ConnectionStatus.APPROVED],
        to_status=ConnectionStatus.REVOKED,
        reason=reason,
        action=AuditAction.CONNECTION_REVOKE,
    )
    connection_id = connection.pk
    transaction.on_commit(lambda: end_live_calls_for_revoked_connection(connection_id))
    return connection


# --- Account deletion and retention -------------------------------------------------------------


def _private_files_of(profile: VisitorProfile) -> list[str]:
    names: list[str] = []
    for id_image, selfie in IdentityCheck.objects.filter(profile=profile).values_list(
        "id_image", "selfie_image"
    ):
        names += [id_image, selfie]
    names += list(Dependant.objects.filter(lead_visitor=profile).values_list("photo", flat=True))
    return [name for name in names if name]


@transaction.atomic
def account_delete(*, user: User) -> bool:
    """Delete the owner's account, photos and face encodings.

    Returns True if the account row is gone. When past bookings still refer to the
    visitor (kept for the prison's records), the account is closed and emptied instead:
    personal details replaced, photos and encodings deleted, sign-in disabled.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    profile = VisitorProfile.objects.filter(user=user).first()
    if profile is not None:
        files = _private_files_of(profile)
        _delete_encodings_of(profile)
        _delete_files_on_commit(*files)
    try:
        with transaction.atomic():
            user.delete()
        return True
    except ProtectedError:
        pass
    assert profile is not None  # noqa: S101 - only a profile's bookings protect a user
    now = timezone.now()
    IdentityCheck.objects.filter(profile=profile).update(
        id_image="", selfie_image="", images_deleted_at=now
    )
    Dependant.objects.filter(lead_visitor=profile).update(
        photo="", first_name="Deleted", last_name="dependant", status=ReviewStatus.REJECTED
    )
    VisitorProfile.objects.filter(pk=profile.pk).update(
        legal_name="Deleted account",
        phone="",
        biometric_consent=False,
        consent_changed_at=now,
        verification_status=VerificationStatus.REJECTED,
    )
    Connection.objects.filter(
        visitor=profile, status__in=[ConnectionStatus.PENDING, ConnectionStatus.APPROVED]
    ).update(status=ConnectionStatus.REVOKED, decided_at=now, decision_reason="Account deleted")
    user.email = f"deleted-{user.pk}@deleted.invalid"
    user.username = f"deleted-{user.pk}"
    user.first_name = user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    EmailAddress.objects.filter(user=user).delete()
    return False


def id_images_delete_expired(*, now: datetime | None = None) -> int:
    """Delete ID and selfie images 30 days after the decision. Idempotent."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IDENTITY_ID_IMAGE_RETENTION_DAYS)
    count = 0
    due = IdentityCheck.objects.filter(
        decided_at__lte=cutoff, images_deleted_at__isnull=True
    ).values_list("pk", "id_image", "selfie_image")
    for check_id, id_image, selfie in due.iterator():
        with transaction.atomic():
            if IdentityCheck.objects.filter(pk=check_id, images_deleted_at__isnull=True).update(
                id_image="", selfie_image="", images_deleted_at=now
            ):
                _delete_files_on_commit(id_image, selfie)
                count += 1
    return count


def encodings_delete_stale(*, now: datetime | None = None) -> int:
    """Delete visitors' and dependants' face encodings after 12 months without a call,
    pre-call check encodings after 90 days, and any left behind by withdrawn consent.
    Idempotent."""
    from bookings.models import BookingStatus, BookingVisitor

    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IDENTITY_ENCODING_RETENTION_DAYS)
    recent = BookingVisitor.objects.filter(
        booking__status=BookingStatus.COMPLETED, booking__starts_at__gte=cutoff
    )
    recent_profiles = recent.exclude(profile=None).values("profile")
    recent_dependants = recent.exclude(dependant=None).values("dependant")
    stale = (
        FaceEnrolment.objects.filter(prisoner=None, created_at__lt=cutoff)
        .exclude(last_used_at__gte=cutoff)
        .exclude(profile__in=recent_profiles)
        .exclude(dependant__in=recent_dependants)
    )
    deleted, _ = stale.delete()
    # The pre-call camera check's encoding lasts IDENTITY_PRECALL_ENCODING_DAYS, calls or
    # not (the selectors stop using it at that age already; this deletes it).
    precall_cutoff = now - timedelta(days=settings.IDENTITY_PRECALL_ENCODING_DAYS)
    deleted += FaceEnrolment.objects.filter(
        source=EnrolmentSource.PRECALL, created_at__lt=precall_cutoff
    ).delete()[0]
    # Consent withdrawal deletes at once (consent_set); this catches any left over.
    withdrawn = FaceEnrolment.objects.filter(profile__biometric_consent=False).delete()[0]
    withdrawn += FaceEnrolment.objects.filter(
        dependant__lead_visitor__biometric_consent=False
    ).delete()[0]
    return deleted + withdrawn


# --- Prisoner enrolment (the photo the terminal's face checks compare with) -------------


def prisoner_enrolment_remove(
    *, prisoner: Prisoner, by: User, establishment: Establishment
) -> bool:
    """Delete the prisoner's face encoding (released, transferred, or a bad photo).

    Calls already running keep the copy their relay loaded; later calls are not checked
    on the prisoner's side until a new photo is enrolled. False if there was none."""
    if prisoner.establishment_id != establishment.pk:
        raise IdentityError("NOT_HERE", gettext("This prisoner is not held at this prison."))
    with transaction.atomic():
        removed, _ = FaceEnrolment.objects.filter(prisoner=prisoner).delete()
        if removed:
            audit_record(
                actor=by,
                action=AuditAction.PRISONER_ENROL_REMOVE,
                establishment=establishment,
                target=prisoner,
                detail={"prison_number": prisoner.prison_number},
            )
    return bool(removed)


def prisoner_enrol(
    *, prisoner: Prisoner, photo: ContentFile, by: User, establishment: Establishment
) -> FaceEnrolment:
    """Encode the one face in ``photo`` and keep it (encrypted) as the prisoner's.

    The photo itself is not kept. A photo with no face or several faces is refused and
    changes nothing; a new photo replaces the previous enrolment.
    """
    from identity import faces

    if prisoner.establishment_id != establishment.pk:
        raise IdentityError("NOT_HERE", gettext("This prisoner is not held at this prison."))
    photo.seek(0)
    found = faces.find_one_face(photo)
    if found.status == faces.FaceStatus.SEVERAL:
        raise IdentityError(
            "SEVERAL_FACES",
            gettext(
                "The photo shows %(count)s faces. Take it again with only the prisoner in view."
            )
            % {"count": found.count},
            field="photo",
        )
    if found.status == faces.FaceStatus.NONE or found.encoding is None:
        raise IdentityError(
            "NO_FACE",
            gettext(
                "No face was found in the photo. Take it again facing the camera, in good light."
            ),
            field="photo",
        )
    with transaction.atomic():
        replaced, _ = FaceEnrolment.objects.filter(prisoner=prisoner).delete()
        enrolment = FaceEnrolment(
            prisoner=prisoner,
            source=EnrolmentSource.PHOTO,
            encoding_encrypted=encrypt_encoding(found.encoding),
        )
        enrolment.full_clean()
        enrolment.save()
        audit_record(
            actor=by,
            action=AuditAction.PRISONER_ENROL,
            establishment=establishment,
            target=prisoner,
            detail={"prison_number": prisoner.prison_number, "replaced": bool(replaced)},
        )
    return enrolment


# --- The pre-call camera check as a face enrolment (issue 16) -----------------------------
#
# On a call's join page a visitor may tick a box to let a few frames of their camera
# check be added to their face data: their own webcam and lighting, often nearer to how
# they look on calls than a passport-style selfie. The frames are checked and
# re-encoded like any photo, stored encrypted in private storage under random names,
# and handed to a Celery task by name after commit. The task reads them and deletes
# them before any face work, so they are gone whatever it finds (the hourly sweep below
# deletes any whose task never ran). It keeps one encoding, the mean of the frames,
# only if every frame shows exactly one face within the visitor's tolerance of their
# selfie: a stranger sitting at the check cannot enrol. What became of a check is kept
# in the cache for the page to ask, keyed by the visitor and a random token.

PRECALL_FRAMES_FOLDER = "identity/precall"
PRECALL_OUTCOME_SECONDS = 15 * 60
PRECALL_LEFTOVER_SECONDS = 60 * 60
PRECALL_WINDOW_SECONDS = 60 * 60


class PrecallResult:
    PENDING = "pending"
    KEPT = "kept"
    NOT_KEPT = "not_kept"
    FAILED = "failed"


PRECALL_MESSAGES = {
    PrecallResult.PENDING: _("Checking the pictures…"),
    PrecallResult.KEPT: _(
        "Thank you. We will use these pictures to recognise you better on your calls."
    ),
    PrecallResult.NOT_KEPT: _(
        "We could not see just you in the pictures, so we did not keep them. Your call is "
        "not affected."
    ),
    PrecallResult.FAILED: _(
        "We could not check the pictures this time, so we did not keep them. Your call is "
        "not affected."
    ),
}


def _precall_outcome_key(profile_id: int, token: str) -> str:
    return f"identity:precall-outcome:{profile_id}:{token}"


def _precall_refusal(profile: VisitorProfile) -> IdentityError | None:
    """Why this visitor may not enrol frames from the camera check (None: they may)."""
    from identity.selectors import precall_enrolment_offered

    if profile.biometric_consent is not True:
        return IdentityError(
            "NO_CONSENT",
            gettext(
                "You have not agreed to face checks by computer, so pictures from the camera "
                "check are not used. You can change this on your account page."
            ),
        )
    if not precall_enrolment_offered(profile):
        return IdentityError(
            "NOT_ENROLLED",
            gettext(
                "Pictures from the camera check can only be used once your selfie has been "
                "checked and your identity approved."
            ),
        )
    return None


def _precall_frame_clean(upload: UploadedFile, *, number: int) -> ContentFile:
    from identity.images import ImageRejected, clean_photo

    max_bytes: int = settings.IDENTITY_PRECALL_FRAME_MAX_BYTES
    if upload.size is None or upload.size > max_bytes:
        raise IdentityError(
            "FRAME_TOO_LARGE",
            gettext("Picture %(number)s is larger than %(kilobytes)s KB.")
            % {"number": number, "kilobytes": max_bytes // 1024},
        )
    try:
        return clean_photo(upload, size=upload.size)
    except ImageRejected as rejected:
        raise IdentityError(
            f"FRAME_{rejected.code.upper()}",
            gettext("Picture %(number)s could not be used: %(problem)s")
            % {"number": number, "problem": rejected.message},
        ) from None


def _precall_frames_delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # the disk is away: the hourly sweep retries
            logger.warning("could not delete pre-call frame %s", name)


def precall_frames_submit(*, profile: VisitorProfile, uploads: list[UploadedFile]) -> str:
    """Check the frames, store them (encrypted) and queue their face check after commit.

    Returns the check's token (what the page asks about). Refused, with nothing
    stored: without consent, before the identity and selfie are approved, with too few
    or too many frames, a frame too big or not a photo, and past
    ``IDENTITY_PRECALL_CHECKS_PER_HOUR`` checks in an hour (bad ones count too)."""
    from identity.crypto import encrypt_bytes
    from identity.tasks import run_precall_enrolment

    refusal = _precall_refusal(profile)
    if refusal is not None:
        raise refusal
    most: int = settings.IDENTITY_PRECALL_MAX_FRAMES
    if not 1 <= len(uploads) <= most:
        raise IdentityError(
            "FRAME_COUNT",
            gettext("Send between 1 and %(most)s pictures from the camera check.") % {"most": most},
        )
    limit: int = settings.IDENTITY_PRECALL_CHECKS_PER_HOUR
    tries = _count_try(f"identity:precall-checks:{profile.pk}", window=PRECALL_WINDOW_SECONDS)
    if tries > limit:
        raise IdentityError(
            "TOO_MANY_CHECKS",
            gettext(
                "You have sent pictures from the camera check %(limit)s times in the last "
                "hour. Try again later. Your call is not affected."
            )
            % {"limit": limit},
        )
    frames = [_precall_frame_clean(upload, number=n) for n, upload in enumerate(uploads, 1)]
    token = uuid.uuid4().hex
    names: list[str] = []
    try:
        for frame in frames:
            names.append(
                default_storage.save(
                    f"{PRECALL_FRAMES_FOLDER}/{uuid.uuid4().hex}.bin",
                    ContentFile(encrypt_bytes(frame.read())),
                )
            )
        with transaction.atomic():
            # Consent may have been withdrawn in another tab since the first look.
            locked = VisitorProfile.objects.select_for_update().get(pk=profile.pk)
            refusal = _precall_refusal(locked)
            if refusal is not None:
                raise refusal
            cache.set(
                _precall_outcome_key(locked.pk, token),
                PrecallResult.PENDING,
                timeout=PRECALL_OUTCOME_SECONDS,
            )
            profile_id, frame_names = locked.pk, list(names)
            # robust: a broker that is away must not turn the visitor's answer into an
            # error page; the sweep deletes the frames and the page says "not checked".
            transaction.on_commit(
                lambda: run_precall_enrolment.delay(profile_id, token, frame_names),
                robust=True,
            )
    except BaseException:
        _precall_frames_delete(names)
        raise
    return token


def precall_check_result(*, profile: VisitorProfile, token: str) -> str | None:
    """What became of the visitor's own check ``token`` (a PrecallResult), None if
    there is no such check of theirs (or it is too old to remember)."""
    if len(token) != 32 or any(c not in "0123456789abcdef" for c in token):
        return None
    result = cache.get(_precall_outcome_key(profile.pk, token))
    return str(result) if result else None


def _precall_record(profile_id: int, token: str, result: str, reason: str, frames: int) -> str:
    cache.set(_precall_outcome_key(profile_id, token), result, timeout=PRECALL_OUTCOME_SECONDS)
    # No names, no distances: which visitor (by id), what happened and why.
    logger.info(
        "pre-call enrolment of profile %s: %s (%s, %d frames)",
        profile_id,
        result,
        reason or "every frame matched the selfie",
        frames,
    )
    return result


def precall_frames_discard(*, profile_id: int, token: str, frame_names: list[str]) -> None:
    """The face check could not run (after its retries, or an error): delete the
    frames, keep nothing, and tell the page."""
    _precall_frames_delete(frame_names)
    _precall_record(profile_id, token, PrecallResult.FAILED, "error", len(frame_names))


def precall_enrolment_run(*, profile_id: int, token: str, frame_names: list[str]) -> str | None:
    """The Celery task's work: read and delete the frames, find one face in each and
    compare it with the selfie; keep the mean encoding only if every frame passed.

    Returns a PrecallResult, or None when the frames are gone already (a duplicate
    delivery, or the sweep). Storage errors other than a missing frame propagate, with
    the frames kept, for the task to retry."""
    from identity import faces
    from identity.crypto import EncodingDecryptError, decrypt_bytes, decrypt_encoding

    try:
        stored = []
        for name in frame_names:
            with default_storage.open(name, "rb") as file:
                stored.append(file.read())
    except FileNotFoundError:
        _precall_frames_delete(frame_names)
        key = _precall_outcome_key(profile_id, token)
        if cache.get(key) == PrecallResult.PENDING:
            _precall_record(profile_id, token, PrecallResult.FAILED, "frames gone", 0)
        return None
    # From here on the pictures exist only in memory, whatever happens next.
    _precall_frames_delete(frame_names)
    count = len(stored)

    def not_kept(reason: str) -> str:
        return _precall_record(profile_id, token, PrecallResult.NOT_KEPT, reason, count)

    try:
        frames = [decrypt_bytes(data) for data in stored]
    except EncodingDecryptError:
        return _precall_record(profile_id, token, PrecallResult.FAILED, "unreadable", count)
    profile = VisitorProfile.objects.filter(pk=profile_id).first()
    if profile is None or _precall_refusal(profile) is not None:
        return not_kept("no consent, or not approved")
    selfie = FaceEnrolment.objects.filter(profile=profile, source=EnrolmentSource.SELFIE).first()
    if selfie is None:
        return not_kept("no selfie encoding")
    selfie_encoding = decrypt_encoding(bytes(selfie.encoding_encrypted))
    mean, why = faces.precall_encoding(
        (io.BytesIO(data) for data in frames),
        selfie_encoding,
        tolerance=face_tolerance_for(profile),
        min_frames=settings.IDENTITY_PRECALL_MIN_FRAMES,
    )
    if mean is None:
        return not_kept(why)
    with transaction.atomic():
        locked = VisitorProfile.objects.select_for_update().filter(pk=profile_id).first()
        if locked is None or _precall_refusal(locked) is not None:
            return not_kept("consent withdrawn during the check")
        # A new check replaces the last one, and its days start again.
        FaceEnrolment.objects.update_or_create(
            profile=locked,
            source=EnrolmentSource.PRECALL,
            defaults={
                "encoding_encrypted": encrypt_encoding(mean),
                "created_at": timezone.now(),
                "last_used_at": None,
            },
        )
    return _precall_record(profile_id, token, PrecallResult.KEPT, "", count)


def precall_frames_delete_leftover(*, now: datetime | None = None) -> int:
    """Delete pre-call frames older than an hour: their task never ran (a lost
    message) or could not delete them. Idempotent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=PRECALL_LEFTOVER_SECONDS)
    try:
        _folders, names = default_storage.listdir(PRECALL_FRAMES_FOLDER)
    except FileNotFoundError:
        return 0
    count = 0
    for name in names:
        path = f"{PRECALL_FRAMES_FOLDER}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
                count += 1
        except OSError:
            logger.warning("could not delete pre-call frame %s", path)
    return count
