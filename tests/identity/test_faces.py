"""The face pipeline on real photos through the real face_recognition code."""

from __future__ import annotations

import io

import face_recognition
import numpy as np
import pytest
from django.core.files.base import ContentFile

from identity import services
from identity.crypto import decrypt_encoding
from identity.faces import FaceStatus, find_one_face, match_id_and_selfie
from identity.images import clean_photo
from identity.models import (
    EnrolmentSource,
    FaceEnrolment,
    FaceResult,
    IdentityCheck,
    ReviewStatus,
    VerificationStatus,
)
from tests import factories
from tests.identity.conftest import face_bytes, jpeg, side_by_side, stored_files


def photo(data: bytes) -> ContentFile:
    return clean_photo(io.BytesIO(data))


def test_obama_against_obama2_matches() -> None:
    outcome = match_id_and_selfie(
        io.BytesIO(face_bytes("obama2.jpg")), io.BytesIO(face_bytes("obama.jpg")), tolerance=0.6
    )
    assert outcome.result == "match"
    assert outcome.distance is not None and outcome.distance < 0.5
    assert outcome.selfie_encoding is not None and outcome.selfie_encoding.shape == (128,)


def test_obama_against_biden_does_not_match() -> None:
    outcome = match_id_and_selfie(
        io.BytesIO(face_bytes("obama.jpg")), io.BytesIO(face_bytes("biden.jpg")), tolerance=0.6
    )
    assert outcome.result == "no_match"
    assert outcome.distance is not None and outcome.distance > 0.7


def test_stricter_tolerance_turns_a_match_into_no_match() -> None:
    outcome = match_id_and_selfie(
        io.BytesIO(face_bytes("obama2.jpg")), io.BytesIO(face_bytes("obama.jpg")), tolerance=0.3
    )
    assert outcome.result == "no_match"


def test_photo_without_a_face() -> None:
    assert find_one_face(io.BytesIO(jpeg(400, 400))).status == FaceStatus.NONE


def test_photo_with_two_faces() -> None:
    found = find_one_face(io.BytesIO(side_by_side("obama.jpg", "biden.jpg")))
    assert found.status == FaceStatus.SEVERAL and found.count == 2


def test_photo_id_with_two_faces_uses_the_largest() -> None:
    # Passports print a small second "ghost" portrait: the big face is the holder's.
    from PIL import Image

    big = Image.open(io.BytesIO(face_bytes("obama2.jpg"))).convert("RGB")
    ghost = Image.open(io.BytesIO(face_bytes("biden.jpg"))).convert("RGB").resize((141, 320))
    card = Image.new("RGB", (big.width + ghost.width + 20, big.height), (230, 230, 230))
    card.paste(big, (0, 0))
    card.paste(ghost, (big.width + 20, 160))
    out = io.BytesIO()
    card.save(out, format="JPEG")
    outcome = match_id_and_selfie(
        io.BytesIO(out.getvalue()), io.BytesIO(face_bytes("obama.jpg")), tolerance=0.6
    )
    assert outcome.result == "match"


# --- Through the service and the Celery task (eager under tests) -------------------------


def submit(profile, id_name: str, selfie_data: bytes, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        check = services.identity_check_submit(
            profile=profile, id_photo=photo(face_bytes(id_name)), selfie=photo(selfie_data)
        )
    check.refresh_from_db()
    return check


@pytest.mark.django_db
def test_submitted_check_gets_a_match_and_an_encrypted_encoding(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(
        profile, "obama2.jpg", face_bytes("obama.jpg"), django_capture_on_commit_callbacks
    )
    assert check.face_result == FaceResult.MATCH
    assert check.face_tolerance == 0.6
    assert 0 < check.face_distance < 0.6
    assert check.status == ReviewStatus.PENDING
    profile.refresh_from_db()
    assert profile.verification_status == VerificationStatus.SUBMITTED
    # Two encodings: the selfie's, and the ID photo's face (it matched the selfie), so
    # the call's face checks compare with the nearer of the two.
    enrolments = {e.source: e for e in FaceEnrolment.objects.filter(profile=profile)}
    assert set(enrolments) == {EnrolmentSource.SELFIE, EnrolmentSource.ID_PHOTO}
    for source, photo_name in (
        (EnrolmentSource.SELFIE, "obama.jpg"),
        (EnrolmentSource.ID_PHOTO, "obama2.jpg"),
    ):
        stored = bytes(enrolments[source].encoding_encrypted)
        encoding = decrypt_encoding(stored)
        assert encoding.shape == (128,)
        assert encoding.tobytes() not in stored  # encrypted, not raw
        reference = face_recognition.face_encodings(
            face_recognition.load_image_file(io.BytesIO(face_bytes(photo_name)))
        )[0]
        assert np.linalg.norm(reference - encoding) < 0.2, source


@pytest.mark.django_db
def test_an_id_photo_that_does_not_match_the_selfie_is_not_enrolled(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(
        profile, "obama.jpg", face_bytes("biden.jpg"), django_capture_on_commit_callbacks
    )
    assert check.face_result == FaceResult.NO_MATCH
    # A reviewer may still approve by eye: only the selfie is kept for the calls.
    assert list(FaceEnrolment.objects.filter(profile=profile).values_list("source", flat=True)) == [
        EnrolmentSource.SELFIE
    ]


@pytest.mark.django_db
def test_someone_else_s_selfie_is_no_match_for_staff_to_see(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(
        profile, "obama.jpg", face_bytes("biden.jpg"), django_capture_on_commit_callbacks
    )
    assert check.face_result == FaceResult.NO_MATCH
    assert check.face_distance > 0.6
    assert check.status == ReviewStatus.PENDING  # staff decide, with the result in view


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("selfie", "result", "words"),
    [
        (lambda: jpeg(480, 640), FaceResult.NO_FACE, "could not see a face"),
        (lambda: side_by_side("obama.jpg", "biden.jpg"), FaceResult.SEVERAL_FACES, "only you"),
    ],
)
def test_selfie_without_exactly_one_face_goes_back_to_the_visitor_and_nothing_is_kept(
    selfie, result, words, private_media, django_capture_on_commit_callbacks, mailoutbox
) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(profile, "obama.jpg", selfie(), django_capture_on_commit_callbacks)
    assert check.face_result == result
    assert check.status == ReviewStatus.REJECTED and words in check.decision_reason
    assert not check.id_image and not check.selfie_image
    assert stored_files(private_media) == []
    assert not FaceEnrolment.objects.filter(profile=profile).exists()
    profile.refresh_from_db()
    assert profile.verification_status == VerificationStatus.REJECTED
    assert len(mailoutbox) == 1 and words in mailoutbox[0].body


@pytest.mark.django_db
def test_declined_consent_means_no_face_processing_at_all(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def forbidden(name: str):  # type: ignore[no-untyped-def]
        def record(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(name)
            raise AssertionError(f"face_recognition.{name} called without consent")

        return record

    for name in ("face_locations", "face_encodings", "load_image_file", "face_distance"):
        monkeypatch.setattr(face_recognition, name, forbidden(name))
    profile = factories.VisitorProfileFactory(
        biometric_consent=False, verification_status=VerificationStatus.NOT_STARTED
    )
    check = submit(
        profile, "obama.jpg", face_bytes("biden.jpg"), django_capture_on_commit_callbacks
    )
    # Even a task run by mistake does nothing for this visitor.
    assert services.identity_check_run_face_match(check_id=check.pk) is None
    assert calls == []
    assert check.face_result == FaceResult.MANUAL
    assert check.face_distance is None
    assert not FaceEnrolment.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        dependant = services.dependant_add(
            profile=profile,
            first_name="Kim",
            last_name="Jones",
            date_of_birth=__import__("datetime").date(2015, 1, 1),
            photo=photo(face_bytes("obama3.jpg")),
        )
    dependant.refresh_from_db()
    assert dependant.face_result == FaceResult.MANUAL
    assert calls == []


@pytest.mark.django_db
def test_face_match_task_is_idempotent(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from identity.tasks import run_identity_face_match

    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(
        profile, "obama2.jpg", face_bytes("obama.jpg"), django_capture_on_commit_callbacks
    )
    first = (check.face_result, check.face_distance, check.face_checked_at)
    assert run_identity_face_match.delay(check.pk).get() is None  # already done: no change
    check.refresh_from_db()
    assert (check.face_result, check.face_distance, check.face_checked_at) == first
    assert FaceEnrolment.objects.filter(profile=profile).count() == 2  # selfie and ID


@pytest.mark.django_db
def test_face_match_that_keeps_failing_is_marked_failed_after_bounded_retries(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from identity import faces

    attempts: list[int] = []

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(1)
        raise OSError("storage unavailable")

    monkeypatch.setattr(faces, "match_id_and_selfie", broken)
    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.NOT_STARTED)
    check = submit(
        profile, "obama2.jpg", face_bytes("obama.jpg"), django_capture_on_commit_callbacks
    )
    assert check.face_result == FaceResult.FAILED
    assert len(attempts) == 4  # first try + 3 retries


@pytest.mark.django_db
def test_dependant_photo_with_one_face_is_encoded_and_without_is_returned(
    private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    profile = factories.VisitorProfileFactory()
    with django_capture_on_commit_callbacks(execute=True):
        good = services.dependant_add(
            profile=profile,
            first_name="Kim",
            last_name="Jones",
            date_of_birth=date(2015, 1, 1),
            photo=photo(face_bytes("obama3.jpg")),
        )
        blank = services.dependant_add(
            profile=profile,
            first_name="Lee",
            last_name="Jones",
            date_of_birth=date(2016, 1, 1),
            photo=photo(jpeg(400, 400)),
        )
    good.refresh_from_db()
    blank.refresh_from_db()
    assert (
        good.face_result == FaceResult.ONE_FACE
        and FaceEnrolment.objects.filter(dependant=good).exists()
    )
    assert blank.face_result == FaceResult.NO_FACE and not blank.photo
    assert len(stored_files(private_media)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.dependant_replace_photo(dependant=blank, photo=photo(face_bytes("biden.jpg")))
    blank.refresh_from_db()
    assert blank.face_result == FaceResult.ONE_FACE and blank.photo


@pytest.mark.django_db
def test_tolerance_comes_from_the_strictest_connected_establishment() -> None:
    profile = factories.VisitorProfileFactory()
    assert services.face_tolerance_for(profile) == 0.6
    strict = factories.EstablishmentFactory(face_match_tolerance=0.45)
    factories.ConnectionFactory(
        visitor=profile, prisoner=factories.PrisonerFactory(establishment=strict), status="pending"
    )
    factories.ConnectionFactory(visitor=profile, status="approved")
    assert services.face_tolerance_for(profile) == 0.45


@pytest.mark.django_db
def test_identity_check_factory_is_pending() -> None:
    check = factories.IdentityCheckFactory()
    assert IdentityCheck.objects.get(pk=check.pk).status == ReviewStatus.PENDING
