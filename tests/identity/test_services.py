from __future__ import annotations

import io
import sys
import types
from datetime import date, timedelta

import numpy as np
import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from bookings.models import BookingStatus
from identity import services
from identity.crypto import encrypt_encoding
from identity.images import clean_photo
from identity.models import (
    Connection,
    ConnectionStatus,
    FaceEnrolment,
    IdentityCheck,
    ReviewStatus,
    VerificationStatus,
    VisitorProfile,
)
from identity.services import CONNECTION_MISMATCH_MESSAGE, IdentityError
from tests import factories
from tests.identity.conftest import face_bytes, stored_files

pytestmark = pytest.mark.django_db


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(IdentityError) as caught:
        call()
    return caught.value.code


def enrol(**owner: object) -> FaceEnrolment:
    return FaceEnrolment.objects.create(encoding_encrypted=encrypt_encoding(np.ones(128)), **owner)


# --- Profile --------------------------------------------------------------------------------


def test_profile_save_and_under_18_refused() -> None:
    user = factories.UserFactory()
    profile = services.profile_save(
        user=user,
        legal_name=" Jo Jones ",
        date_of_birth=date(1980, 1, 1),
        phone="07700 900123",
        country_of_residence="gb",
    )
    assert profile.legal_name == "Jo Jones" and profile.country_of_residence == "GB"
    other = factories.UserFactory()
    young = timezone.localdate().replace(year=timezone.localdate().year - 17)
    assert (
        code_of(
            lambda: services.profile_save(
                user=other,
                legal_name="Young",
                date_of_birth=young,
                phone="07700 900123",
                country_of_residence="GB",
            )
        )
        == "UNDER_18"
    )
    assert not VisitorProfile.objects.filter(user=other).exists()


def test_name_is_fixed_once_checked() -> None:
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.SUBMITTED)
    assert (
        code_of(
            lambda: services.profile_save(
                user=profile.user,
                legal_name="Someone Else",
                date_of_birth=profile.date_of_birth,
                phone="07700 900999",
                country_of_residence="GB",
            )
        )
        == "PROFILE_LOCKED"
    )


# --- Consent -------------------------------------------------------------------------------


def test_withdrawing_consent_deletes_encodings_at_once() -> None:
    profile = factories.VisitorProfileFactory()
    child = factories.DependantFactory(lead_visitor=profile)
    enrol(profile=profile)
    enrol(dependant=child)
    keep = enrol(profile=factories.VisitorProfileFactory())
    services.consent_set(profile=profile, consent=False)
    profile.refresh_from_db()
    assert profile.biometric_consent is False and profile.consent_changed_at
    assert list(FaceEnrolment.objects.all()) == [keep]


def test_consent_records_time_and_notice_version(settings) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(biometric_consent=None)
    services.consent_set(profile=profile, consent=True)
    profile.refresh_from_db()
    assert profile.consent_notice_version == settings.IDENTITY_CONSENT_NOTICE_VERSION


def test_cannot_submit_twice_while_waiting(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(
        biometric_consent=False, verification_status=VerificationStatus.NOT_STARTED
    )
    photo = clean_photo(io.BytesIO(face_bytes("obama.jpg")))
    services.identity_check_submit(profile=profile, id_photo=photo, selfie=photo)
    assert (
        code_of(
            lambda: services.identity_check_submit(profile=profile, id_photo=photo, selfie=photo)
        )
        == "CHECK_PENDING"
    )
    assert IdentityCheck.objects.count() == 1


# --- Decisions ------------------------------------------------------------------------------


def test_approve_identity_audits_and_emails(mailoutbox, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    admin = factories.UserFactory()
    establishment = factories.EstablishmentFactory()
    check = factories.IdentityCheckFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.identity_check_approve(check=check, by=admin, establishment=establishment)
    check.refresh_from_db()
    check.profile.refresh_from_db()
    assert check.status == ReviewStatus.APPROVED and check.decided_by == admin
    assert check.profile.verification_status == VerificationStatus.APPROVED
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.IDENTITY_APPROVE and entry.actor == admin
    assert len(mailoutbox) == 1 and "approved" in mailoutbox[0].subject
    assert mailoutbox[0].alternatives  # HTML part too
    # A second decision on the same check is refused and changes nothing.
    assert (
        code_of(
            lambda: services.identity_check_reject(
                check=check, by=admin, establishment=establishment, reason="x"
            )
        )
        == "ALREADY_DECIDED"
    )


def test_reject_needs_a_reason_and_tells_the_visitor(
    mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    admin = factories.UserFactory()
    establishment = factories.EstablishmentFactory()
    check = factories.IdentityCheckFactory()
    enrol(profile=check.profile)
    assert (
        code_of(
            lambda: services.identity_check_reject(
                check=check, by=admin, establishment=establishment, reason="  "
            )
        )
        == "REASON_REQUIRED"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.identity_check_reject(
            check=check, by=admin, establishment=establishment, reason="The ID photo is blurred."
        )
    assert "The ID photo is blurred." in mailoutbox[0].body
    assert not FaceEnrolment.objects.exists()
    assert AuditEntry.objects.get().reason == "The ID photo is blurred."


# --- Connections ------------------------------------------------------------------------------


@pytest.fixture
def prisoner():  # type: ignore[no-untyped-def]
    return factories.PrisonerFactory(
        prison_number="A1234BC", last_name="Jones", date_of_birth=date(1985, 3, 14)
    )


def request_connection(profile, prisoner, **changes):  # type: ignore[no-untyped-def]
    values = {
        "prison_number": "a1234bc ",
        "last_name": "JONES",
        "date_of_birth": date(1985, 3, 14),
        "establishment": prisoner.establishment,
        "relationship": "partner",
        **changes,
    }
    return services.connection_request(profile=profile, **values)


def test_connection_request_matches_case_insensitively(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    connection = request_connection(profile, prisoner)
    assert connection.prisoner == prisoner and connection.status == ConnectionStatus.PENDING
    assert code_of(lambda: request_connection(profile, prisoner)) == "ALREADY_REQUESTED"


def test_wrong_prison_number_format(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    assert code_of(lambda: request_connection(profile, prisoner, prison_number="12345")) == (
        "BAD_PRISON_NUMBER"
    )
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"date_of_birth": date(1985, 3, 15)},
        {"last_name": "Smith"},
        {"prison_number": "Z9999ZZ"},
        {"establishment": "other"},
    ],
)
def test_every_mismatch_gets_the_same_generic_error(prisoner, changes) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    if changes.get("establishment") == "other":
        changes = {"establishment": factories.EstablishmentFactory()}
    with pytest.raises(IdentityError) as caught:
        request_connection(profile, prisoner, **changes)
    assert caught.value.code == "NO_MATCH"
    assert caught.value.message == CONNECTION_MISMATCH_MESSAGE
    assert caught.value.field is None
    assert not Connection.objects.exists()


def test_seventh_pending_request_is_refused() -> None:
    profile = factories.VisitorProfileFactory()
    prisoners = [factories.PrisonerFactory() for _ in range(7)]
    for p in prisoners[:6]:
        request_connection(
            profile,
            p,
            prison_number=p.prison_number,
            last_name=p.last_name,
            date_of_birth=p.date_of_birth,
        )
    p = prisoners[6]
    assert (
        code_of(
            lambda: request_connection(
                profile,
                p,
                prison_number=p.prison_number,
                last_name=p.last_name,
                date_of_birth=p.date_of_birth,
            )
        )
        == "TOO_MANY_PENDING"
    )
    assert Connection.objects.filter(visitor=profile).count() == 6


def test_approving_needs_a_verified_visitor(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.SUBMITTED)
    connection = request_connection(profile, prisoner)
    admin = factories.UserFactory()
    assert (
        code_of(
            lambda: services.connection_approve(
                connection=connection, by=admin, establishment=prisoner.establishment
            )
        )
        == "VISITOR_NOT_VERIFIED"
    )
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.PENDING


def test_revoke_takes_effect_at_once_and_ends_live_calls(
    monkeypatch, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    import calls

    ended: list[int] = []
    fake = types.ModuleType("calls.services")
    fake.call_end_for_revoked_connection = lambda *, connection_id: ended.append(connection_id)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "calls.services", fake)
    monkeypatch.setattr(calls, "services", fake, raising=False)

    connection = factories.ConnectionFactory()
    admin = factories.UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_revoke(
            connection=connection,
            by=admin,
            establishment=connection.prisoner.establishment,
            reason="Safeguarding concern",
        )
        # Before commit nothing has been ended yet.
        assert ended == []
    assert ended == [connection.pk]
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.REVOKED
    assert AuditEntry.objects.get().action == AuditAction.CONNECTION_REVOKE
    assert "withdrawn" in mailoutbox[0].body


@pytest.mark.parametrize("module", [types.ModuleType("calls.services"), None])
def test_revoke_works_without_the_calls_hook(
    module, monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # None: no calls.services module at all (importing it fails).
    monkeypatch.setitem(sys.modules, "calls.services", module)
    connection = factories.ConnectionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_revoke(
            connection=connection,
            by=factories.UserFactory(),
            establishment=connection.prisoner.establishment,
            reason="x",
        )
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.REVOKED


# --- Retention --------------------------------------------------------------------------------


def make_decided_check(private_media, decided_days_ago: int) -> IdentityCheck:  # type: ignore[no-untyped-def]
    photo = clean_photo(io.BytesIO(face_bytes("obama.jpg")))
    check = factories.IdentityCheckFactory(
        status=ReviewStatus.APPROVED,
        decided_at=timezone.now() - timedelta(days=decided_days_ago),
    )
    check.id_image.save("id.jpg", photo)
    check.selfie_image.save("selfie.jpg", photo)
    return check


def test_id_images_are_deleted_30_days_after_the_decision(
    private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from identity.tasks import delete_expired_id_images

    old = make_decided_check(private_media, 31)
    recent = make_decided_check(private_media, 29)
    assert len(stored_files(private_media)) == 4
    with django_capture_on_commit_callbacks(execute=True):
        assert delete_expired_id_images.delay().get() == 1
    old.refresh_from_db()
    assert not old.id_image and not old.selfie_image and old.images_deleted_at
    assert len(stored_files(private_media)) == 2
    recent.refresh_from_db()
    assert recent.id_image
    with django_capture_on_commit_callbacks(execute=True):
        assert delete_expired_id_images.delay().get() == 0  # idempotent


def test_encodings_are_deleted_after_12_months_without_a_call() -> None:
    from identity.tasks import delete_stale_encodings

    with time_machine.travel(timezone.now() - timedelta(days=400)):
        called = factories.ConnectionFactory().visitor
        silent = factories.VisitorProfileFactory()
        enrol(profile=called)
        enrol(profile=silent)
        prisoner_face = enrol(prisoner=factories.PrisonerFactory())
    fresh = enrol(profile=factories.VisitorProfileFactory())
    booking = factories.BookingFactory(
        connection=Connection.objects.get(visitor=called),
        starts_at=timezone.now() - timedelta(days=60),
        status=BookingStatus.COMPLETED,
    )
    assert booking.visitors.filter(profile=called).exists()
    assert delete_stale_encodings.delay().get() == 1
    remaining = set(FaceEnrolment.objects.values_list("pk", flat=True))
    assert FaceEnrolment.objects.filter(profile=called).exists()
    assert not FaceEnrolment.objects.filter(profile=silent).exists()
    assert {prisoner_face.pk, fresh.pk} <= remaining
    assert delete_stale_encodings.delay().get() == 0


def test_account_deletion_removes_everything(
    private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    check = make_decided_check(private_media, 1)
    profile = check.profile
    enrol(profile=profile)
    user = profile.user
    with django_capture_on_commit_callbacks(execute=True):
        assert services.account_delete(user=user) is True
    assert not User.objects.filter(pk=user.pk).exists()
    assert not FaceEnrolment.objects.exists()
    assert stored_files(private_media) == []


def test_account_with_past_bookings_is_emptied_and_closed(
    private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    booking = factories.BookingFactory(status=BookingStatus.COMPLETED)
    profile = booking.lead_visitor
    enrol(profile=profile)
    user = profile.user
    with django_capture_on_commit_callbacks(execute=True):
        assert services.account_delete(user=user) is False
    user.refresh_from_db()
    profile.refresh_from_db()
    assert not user.is_active and not user.has_usable_password()
    assert "deleted" in user.email and profile.legal_name == "Deleted account"
    assert not FaceEnrolment.objects.exists()
    assert profile.connections.get().status == ConnectionStatus.REVOKED
