"""The visitor's own frames from the pre-call check as a third face enrolment (issue 16):
real faces through the real endpoint, task and face pipeline (Celery is eager here)."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from datetime import timedelta
from functools import cache

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.urls import reverse
from django.utils import timezone, translation

from identity import faces, services, tasks
from identity.crypto import decrypt_bytes, decrypt_encoding, encrypt_bytes, encrypt_encoding
from identity.images import clean_photo
from identity.models import EnrolmentSource, FaceEnrolment, VerificationStatus
from identity.selectors import approved_encodings_for_booking
from identity.subject_access import family_export
from tests import factories
from tests.calls.conftest import make_setup
from tests.identity.conftest import face_bytes, jpeg, png_with_script, side_by_side, upload

pytestmark = pytest.mark.django_db

URL = "/me/precall-frames/"
OWN = ["obama2.jpg", "obama3.jpg", "obama.jpg"]  # the selfie is obama.jpg


@cache
def encoding_of(data: bytes) -> np.ndarray:
    """The encoding of the one face in ``data`` as the task sees it (re-encoded first)."""
    found = faces.find_one_face(clean_photo(io.BytesIO(data)))
    assert found.status == faces.FaceStatus.ONE and found.encoding is not None
    return found.encoding


def enrolled(user=None, **profile):  # type: ignore[no-untyped-def]
    """An approved visitor with consent and the encoding of their selfie (obama.jpg)."""
    visitor = factories.VisitorProfileFactory(
        **({"user": user} if user is not None else {}), **profile
    )
    FaceEnrolment.objects.create(
        profile=visitor,
        source=EnrolmentSource.SELFIE,
        encoding_encrypted=encrypt_encoding(encoding_of(face_bytes("obama.jpg"))),
    )
    return visitor


def frames(*contents: bytes, name: str = "frame.jpg") -> dict[str, list]:
    return {"frame": [upload(f"{n}-{name}", data) for n, data in enumerate(contents)]}


def faces_of(*names: str) -> dict[str, list]:
    return frames(*(face_bytes(name) for name in names))


def precall(visitor):  # type: ignore[no-untyped-def]
    return FaceEnrolment.objects.filter(profile=visitor, source=EnrolmentSource.PRECALL).first()


def files_in(root) -> list:  # type: ignore[no-untyped-def]
    return [path for path in root.rglob("*") if path.is_file()]


class OnCommitClient:
    """A test client whose requests run their on-commit work (the task), as a real
    request does when its transaction commits: after the view has answered."""

    def __init__(self, client, capture) -> None:  # type: ignore[no-untyped-def]
        self.client, self.capture = client, capture

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.client, name)

    def post(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.capture(execute=True):
            return self.client.post(*args, **kwargs)


@pytest.fixture(autouse=True)
def _english_after_each_test():  # type: ignore[no-untyped-def]
    # A request answered in Welsh leaves Welsh active in this thread: leave English.
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def web(client, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    return OnCommitClient(client, django_capture_on_commit_callbacks)


@pytest.fixture
def visitor(web):  # type: ignore[no-untyped-def]
    profile = enrolled()
    web.force_login(profile.user)
    return profile


def send(web, data) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """POST the frames, then ask what became of them (the page's poll)."""
    response = web.post(URL, data)
    answer = response.json()
    if response.status_code == 202:
        assert answer["status"] == "pending"
        assert answer["poll"] == f"{URL}?check={answer['check']}"
        polled = web.get(answer["poll"])
        assert polled.status_code == 200
        assert polled["Cache-Control"] == "no-store, private"
        return 200, polled.json()
    return response.status_code, answer


# --- What is kept ----------------------------------------------------------------------------


def test_the_visitors_own_frames_are_kept_as_their_mean(web, visitor, private_media) -> None:  # type: ignore[no-untyped-def]
    status, answer = send(web, faces_of(*OWN))
    assert status == 200 and answer["status"] == "kept", answer
    assert answer["message"].startswith("Thank you. We will use these pictures")
    enrolment = precall(visitor)
    assert enrolment is not None
    stored = bytes(enrolment.encoding_encrypted)
    encoding = decrypt_encoding(stored)
    assert encoding.tobytes() not in stored  # encrypted, not raw
    mean = np.mean([encoding_of(face_bytes(name)) for name in OWN], axis=0)
    assert np.linalg.norm(encoding - mean) < 1e-6
    selfie = encoding_of(face_bytes("obama.jpg"))
    assert 0 < np.linalg.norm(encoding - selfie) <= services.face_tolerance_for(visitor)
    # The selfie's encoding is untouched, and no picture is left anywhere.
    assert FaceEnrolment.objects.filter(profile=visitor).count() == 2
    assert files_in(private_media) == []


@pytest.mark.parametrize(
    ("case", "pictures"),
    [
        ("someone else", [face_bytes("biden.jpg")] * 3),
        (
            "someone else, three photos",
            [face_bytes(n) for n in ("biden.jpg", "hopper.jpg", "collins.jpg")],
        ),
        ("a mix", [face_bytes("obama2.jpg"), face_bytes("biden.jpg"), face_bytes("obama3.jpg")]),
        (
            "the visitor, then someone else",
            [face_bytes("obama2.jpg")] * 2 + [face_bytes("hopper.jpg")],
        ),
        ("no face", [jpeg(640, 480)] * 3),
        (
            "one without a face",
            [face_bytes("obama2.jpg"), jpeg(640, 480), face_bytes("obama3.jpg")],
        ),
        ("two faces", [side_by_side("obama.jpg", "biden.jpg")] * 3),
        ("the visitor with someone", [side_by_side("obama.jpg", "obama2.jpg")] * 3),
        ("too few", [face_bytes("obama2.jpg"), face_bytes("obama3.jpg")]),
    ],
)
def test_nothing_is_kept_unless_every_frame_is_just_the_visitor(  # type: ignore[no-untyped-def]
    web, visitor, private_media, case, pictures
) -> None:
    status, answer = send(web, frames(*pictures))
    assert status == 200 and answer["status"] == "not_kept", (case, answer)
    assert answer["message"] == (
        "We could not see just you in the pictures, so we did not keep them. Your call is "
        "not affected."
    )
    assert precall(visitor) is None
    assert files_in(private_media) == []


def test_a_failed_check_leaves_the_last_good_one(web, visitor) -> None:  # type: ignore[no-untyped-def]
    assert send(web, faces_of(*OWN))[1]["status"] == "kept"
    before = bytes(precall(visitor).encoding_encrypted)
    assert send(web, faces_of("biden.jpg", "biden.jpg", "biden.jpg"))[1]["status"] == "not_kept"
    assert bytes(precall(visitor).encoding_encrypted) == before


def test_a_second_check_replaces_the_first(web, visitor) -> None:  # type: ignore[no-untyped-def]
    assert send(web, faces_of(*OWN))[1]["status"] == "kept"
    first = precall(visitor)
    FaceEnrolment.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=60))
    assert send(web, faces_of("obama3.jpg", "obama3.jpg", "obama3.jpg"))[1]["status"] == "kept"
    [second] = FaceEnrolment.objects.filter(profile=visitor, source=EnrolmentSource.PRECALL)
    assert second.pk == first.pk  # updated in place: one per visitor and source
    encoding = decrypt_encoding(bytes(second.encoding_encrypted))
    assert np.linalg.norm(encoding - encoding_of(face_bytes("obama3.jpg"))) < 1e-6
    # Its 90 days start again.
    assert timezone.now() - second.created_at < timedelta(minutes=5)


def test_the_frames_wait_encrypted_and_are_deleted_once_read(  # type: ignore[no-untyped-def]
    client, django_capture_on_commit_callbacks, private_media
) -> None:
    profile = enrolled()
    client.force_login(profile.user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(URL, faces_of(*OWN))
    assert response.status_code == 202
    waiting = files_in(private_media)
    assert len(waiting) == 3
    for path in waiting:
        assert path.parent.name == "precall" and path.suffix == ".bin"
        content = path.read_bytes()
        assert not content.startswith(b"\xff\xd8")  # encrypted: a Fernet token
        assert decrypt_bytes(content).startswith(b"\xff\xd8\xff")  # a re-encoded JPEG
    [queue_the_task] = callbacks
    queue_the_task()
    assert files_in(private_media) == []
    assert precall(profile) is not None


def test_frames_are_deleted_when_the_face_code_fails(  # type: ignore[no-untyped-def]
    web, visitor, private_media, monkeypatch
) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("dlib fell over")

    monkeypatch.setattr(faces, "find_one_face", broken)
    status, answer = send(web, faces_of(*OWN))
    assert status == 200 and answer["status"] == "failed"
    assert "could not check the pictures" in answer["message"]
    assert precall(visitor) is None
    assert files_in(private_media) == []


def test_frames_are_deleted_when_storage_keeps_failing(  # type: ignore[no-untyped-def]
    web, visitor, private_media, monkeypatch
) -> None:
    reads = []

    def unreadable(self, name, mode="rb"):  # type: ignore[no-untyped-def]
        reads.append(name)
        raise OSError("disk away")

    monkeypatch.setattr(FileSystemStorage, "open", unreadable)
    status, answer = send(web, faces_of(*OWN))
    assert status == 200 and answer["status"] == "failed"
    assert len(reads) == tasks.MAX_RETRIES + 1  # tried, retried, then given up
    assert precall(visitor) is None
    assert files_in(private_media) == []


def test_a_duplicate_delivery_changes_nothing(visitor, private_media) -> None:  # type: ignore[no-untyped-def]
    names = [
        default_storage.save(f"identity/precall/{n}.bin", ContentFile(encrypt_bytes(face_bytes(n))))
        for n in OWN
    ]
    run = {"profile_id": visitor.pk, "token": "a" * 32, "frame_names": names}
    assert services.precall_enrolment_run(**run) == "kept"
    kept = bytes(precall(visitor).encoding_encrypted)
    assert services.precall_enrolment_run(**run) is None
    assert bytes(precall(visitor).encoding_encrypted) == kept
    assert files_in(private_media) == []


def test_leftover_frames_are_swept_after_an_hour(private_media) -> None:  # type: ignore[no-untyped-def]
    old = default_storage.save("identity/precall/old.bin", ContentFile(b"x"))
    new = default_storage.save("identity/precall/new.bin", ContentFile(b"y"))
    an_hour_ago = time.time() - 3700
    os.utime(default_storage.path(old), (an_hour_ago, an_hour_ago))
    assert services.precall_frames_delete_leftover() == 1
    assert not default_storage.exists(old) and default_storage.exists(new)
    assert tasks.delete_leftover_precall_frames() == 0


# --- Who may, and what is refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "error"),
    [
        ({"biometric_consent": None}, "NO_CONSENT"),
        ({"biometric_consent": False}, "NO_CONSENT"),
        ({"verification_status": VerificationStatus.SUBMITTED}, "NOT_ENROLLED"),
        ({"verification_status": VerificationStatus.REJECTED}, "NOT_ENROLLED"),
    ],
)
def test_refused_without_consent_or_approval(web, private_media, profile, error) -> None:  # type: ignore[no-untyped-def]
    visitor = enrolled(**profile)
    web.force_login(visitor.user)
    response = web.post(URL, faces_of(*OWN))
    assert response.status_code == 403
    assert response.json()["error"] == error and response.json()["message"]
    assert precall(visitor) is None
    assert files_in(private_media) == []


def test_refused_without_a_selfie_encoding(web, private_media) -> None:  # type: ignore[no-untyped-def]
    visitor = factories.VisitorProfileFactory()  # approved, consent, but verified by… nothing
    web.force_login(visitor.user)
    response = web.post(URL, faces_of(*OWN))
    assert response.status_code == 403 and response.json()["error"] == "NOT_ENROLLED"
    assert not FaceEnrolment.objects.exists()
    assert files_in(private_media) == []


def test_consent_withdrawn_while_the_frames_wait_keeps_nothing(  # type: ignore[no-untyped-def]
    client, django_capture_on_commit_callbacks, private_media
) -> None:
    profile = enrolled()
    client.force_login(profile.user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(URL, faces_of(*OWN)).status_code == 202
    services.consent_set(profile=profile, consent=False)
    callbacks[0]()
    assert not FaceEnrolment.objects.filter(profile=profile).exists()
    assert files_in(private_media) == []


def test_signed_out_is_sent_to_sign_in(client, private_media) -> None:  # type: ignore[no-untyped-def]
    response = client.post(URL, faces_of(*OWN))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get(URL).status_code == 302
    assert files_in(private_media) == []


def test_staff_have_no_profile_to_enrol(web, people, private_media) -> None:  # type: ignore[no-untyped-def]
    web.force_login(people.officer_x)
    response = web.post(URL, faces_of(*OWN))
    assert response.status_code == 403 and response.json()["error"] == "NO_PROFILE"
    assert not FaceEnrolment.objects.exists()


def test_nobody_can_act_on_or_read_another_familys_check(web, people, private_media) -> None:  # type: ignore[no-untyped-def]
    ann = enrolled(user=people.family_a)
    bea = enrolled(user=people.family_b)  # the same face: the fixtures have one person thrice
    web.force_login(people.family_a)
    token = web.post(URL, faces_of(*OWN)).json()["check"]
    anns = bytes(precall(ann).encoding_encrypted)
    # Bea cannot see what became of Ann's check: it is not hers.
    web.force_login(people.family_b)
    assert web.get(URL, {"check": token}).status_code == 404
    # Whatever she sends (a profile id in the form, say), only her own face data changes.
    data = {**faces_of("obama3.jpg", "obama3.jpg", "obama3.jpg"), "profile": str(ann.pk)}
    bea_token = web.post(URL, data).json()["check"]
    assert web.get(URL, {"check": bea_token}).json()["status"] == "kept"
    assert precall(bea) is not None
    assert bytes(precall(ann).encoding_encrypted) == anns
    web.force_login(people.family_a)
    assert web.get(URL, {"check": token}).json()["status"] == "kept"
    assert web.get(URL, {"check": bea_token}).status_code == 404


@pytest.mark.parametrize("check", ["", "nonsense", "0" * 32, "../../etc/passwd"])
def test_an_unknown_check_is_not_found(web, visitor, check) -> None:  # type: ignore[no-untyped-def]
    response = web.get(URL, {"check": check})
    assert response.status_code == 404 and response.json()["error"] == "NO_SUCH_CHECK"


HOSTILE = {
    "not an image": ({"frame": [upload("a.jpg", b"hello, not a picture")]}, "FRAME_NOT_AN_IMAGE"),
    "ten files": (faces_of(*(["obama.jpg"] * 10)), "FRAME_COUNT"),
    "a 5 MB file": (frames(face_bytes("obama.jpg") + b"\0" * (5 * 1024 * 1024)), "FRAME_TOO_LARGE"),
    "an SVG named .jpg": (
        frames(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'),
        "FRAME_NOT_AN_IMAGE",
    ),
    "HTML named .jpg": (frames(b"<html><script>alert(1)</script></html>"), "FRAME_NOT_AN_IMAGE"),
    "a JPEG carrying HTML": (
        frames(face_bytes("obama.jpg") + b"<script>alert(1)</script>"),
        "FRAME_ACTIVE_CONTENT",
    ),
    "a PNG carrying a script": (frames(png_with_script(), name="f.png"), "FRAME_ACTIVE_CONTENT"),
    "a tiny picture": (frames(jpeg(120, 90)), "FRAME_TOO_SMALL"),
    "an empty file": (frames(b""), "FRAME_EMPTY"),
    "zero files": ({}, "FRAME_COUNT"),
    "a file under another name": (
        {"selfie": upload("s.jpg", face_bytes("obama.jpg"))},
        "BAD_REQUEST",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_bad_input_gets_a_clear_error_and_stores_nothing(  # type: ignore[no-untyped-def]
    web, visitor, private_media, case
) -> None:
    data, error = HOSTILE[case]
    response = web.post(URL, data)
    assert response.status_code == 400, case
    answer = response.json()
    assert answer["error"] == error, (case, answer)
    assert answer["message"] and "Traceback" not in answer["message"]
    assert precall(visitor) is None
    assert files_in(private_media) == []


def test_hostile_frames_are_mixed_with_good_ones_in_vain(web, visitor, private_media) -> None:  # type: ignore[no-untyped-def]
    data = frames(face_bytes("obama2.jpg"), b"<svg/>", face_bytes("obama3.jpg"))
    response = web.post(URL, data)
    assert response.status_code == 400
    assert response.json()["message"].startswith("Picture 2 could not be used")
    assert precall(visitor) is None and files_in(private_media) == []


def test_a_few_checks_an_hour(web, visitor, private_media) -> None:  # type: ignore[no-untyped-def]
    # One blank frame: cheap for the face code, and never kept.
    for _ in range(4):
        assert web.post(URL, frames(jpeg(640, 480))).status_code == 202
    response = web.post(URL, faces_of(*OWN))
    assert response.status_code == 429
    assert response.json()["error"] == "TOO_MANY_CHECKS"
    assert "Your call is not affected" in response.json()["message"]
    assert precall(visitor) is None and files_in(private_media) == []
    # Another visitor has their own count.
    other = enrolled()
    web.force_login(other.user)
    assert web.post(URL, frames(jpeg(640, 480))).status_code == 202


def test_welsh_answers(web, visitor) -> None:  # type: ignore[no-untyped-def]
    response = web.post(URL, faces_of(*OWN), HTTP_ACCEPT_LANGUAGE="cy")
    polled = web.get(response.json()["poll"], HTTP_ACCEPT_LANGUAGE="cy").json()
    assert polled["message"].startswith("Diolch.")
    refused = web.post(URL, {}, HTTP_ACCEPT_LANGUAGE="cy").json()
    assert refused["message"].startswith("Anfonwch rhwng 1 a 5 llun")


# --- How long it is kept, and where it goes ------------------------------------------------------


def precall_made(visitor, *, days_ago: float):  # type: ignore[no-untyped-def]
    enrolment = FaceEnrolment.objects.create(
        profile=visitor,
        source=EnrolmentSource.PRECALL,
        encoding_encrypted=encrypt_encoding(encoding_of(face_bytes("obama3.jpg"))),
    )
    FaceEnrolment.objects.filter(pk=enrolment.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return enrolment


def test_expires_after_90_days_calls_or_not(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.IDENTITY_PRECALL_ENCODING_DAYS == 90
    old, recent = enrolled(), enrolled()
    precall_made(old, days_ago=91)
    precall_made(recent, days_ago=89)
    assert services.encodings_delete_stale() == 1
    assert precall(old) is None and precall(recent) is not None
    # The selfies stay (12 months without a call).
    assert FaceEnrolment.objects.filter(source=EnrolmentSource.SELFIE).count() == 2


def test_consent_withdrawal_and_account_deletion_delete_it() -> None:
    withdrawing, leaving = enrolled(), enrolled()
    precall_made(withdrawing, days_ago=1)
    precall_made(leaving, days_ago=1)
    services.consent_set(profile=withdrawing, consent=False)
    assert not FaceEnrolment.objects.filter(profile=withdrawing).exists()
    services.account_delete(user=leaving.user)
    assert not FaceEnrolment.objects.filter(profile_id=leaving.pk).exists()


def test_calls_compare_with_it_until_it_expires() -> None:
    setup = make_setup()
    lead = setup.booking.lead_visitor
    FaceEnrolment.objects.create(
        profile=lead,
        source=EnrolmentSource.SELFIE,
        encoding_encrypted=encrypt_encoding(encoding_of(face_bytes("obama.jpg"))),
    )
    enrolment = precall_made(lead, days_ago=1)
    encodings = approved_encodings_for_booking(setup.booking)
    assert len(encodings) == 2
    precall_encoding = decrypt_encoding(bytes(enrolment.encoding_encrypted))
    assert any(np.array_equal(e, precall_encoding) for e in encodings)
    # Past its days it is not used, even before the retention job deletes it.
    FaceEnrolment.objects.filter(pk=enrolment.pk).update(
        created_at=timezone.now() - timedelta(days=91)
    )
    assert len(approved_encodings_for_booking(setup.booking)) == 1


def test_the_export_lists_it_with_its_own_deletion_date() -> None:
    visitor = enrolled()
    enrolment = precall_made(visitor, days_ago=10)
    archive = zipfile.ZipFile(io.BytesIO(family_export(profile=visitor, actor=visitor.user)))
    note = json.loads(archive.read("family.json"))["face_encoding"]
    assert note["made_from"] == ["Selfie", "Camera check before a call"]
    [_selfie, entry] = note["each"]
    enrolment.refresh_from_db()
    assert entry["made_from"] == "Camera check before a call"
    assert entry["deleted_by"] == (enrolment.created_at + timedelta(days=90)).isoformat()
    assert "90 days" in note["deleted_when"]
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert bytes(enrolment.encoding_encrypted) not in everything


def test_admin_shows_the_source_never_the_encoding(client) -> None:  # type: ignore[no-untyped-def]
    root = factories.UserFactory(email="root@example.test")
    root.is_staff = root.is_superuser = True
    root.save()
    factories.mfa_enabled(root)
    client.force_login(root)
    visitor = enrolled()
    enrolment = precall_made(visitor, days_ago=3)
    page = client.get(reverse("admin:identity_visitorprofile_change", args=[visitor.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Camera check before a call" in html and "Selfie" in html
    assert bytes(enrolment.encoding_encrypted).decode() not in html


# --- The join page --------------------------------------------------------------------------------


def join_page(client, setup, **headers) -> str:  # type: ignore[no-untyped-def]
    client.force_login(setup.family)
    response = client.get(reverse("calls:join", args=[setup.booking.reference]), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_join_page_offers_the_tick_box_with_consent_and_a_selfie(client) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()
    lead = setup.booking.lead_visitor
    assert 'id="precall-enrol-tick"' not in join_page(client, setup)  # no selfie encoding
    FaceEnrolment.objects.create(
        profile=lead, source=EnrolmentSource.SELFIE, encoding_encrypted=b"x"
    )
    html = join_page(client, setup)
    # Unticked, explained, and not part of the form that joins the call.
    assert '<input type="checkbox" id="precall-enrol-tick" aria-describedby=' in html
    assert html.index('id="precall-enrol-tick"') < html.index('id="aup-heading"')
    assert f'data-url="{URL}"' in html and 'data-frames="3"' in html
    assert "Use 3 pictures from this camera check to recognise me better on calls." in html
    assert "kept for 90 days, and never shown to anyone" in html
    assert "<script>" not in html and "style=" not in html  # the CSP
    welsh = join_page(client, setup, HTTP_ACCEPT_LANGUAGE="cy")
    assert "Defnyddio 3 llun o'r gwiriad camera hwn i'm hadnabod yn well ar alwadau." in welsh
    assert "eu cadw am 90 diwrnod, a byth eu dangos i neb" in welsh
    # Without consent (or with it withdrawn) there is no box.
    lead.biometric_consent = False
    lead.save()
    assert 'id="precall-enrol-tick"' not in join_page(client, setup)


def test_the_join_page_has_no_box_before_approval(client) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()
    lead = setup.booking.lead_visitor
    FaceEnrolment.objects.create(
        profile=lead, source=EnrolmentSource.SELFIE, encoding_encrypted=b"x"
    )
    lead.verification_status = VerificationStatus.SUBMITTED
    lead.save()
    assert 'id="precall-enrol-tick"' not in join_page(client, setup)


def test_the_privacy_notice_says_so(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get(reverse("privacy")).content.decode()
    assert "kept for 90 days, but only if each one matches your selfie" in html
