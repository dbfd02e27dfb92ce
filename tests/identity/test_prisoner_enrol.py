"""Staff enrol a prisoner's face photo: the terminal's camera is checked against it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from audit.models import AuditAction, AuditEntry
from identity.crypto import decrypt_encoding
from identity.models import FaceEnrolment
from tests import factories
from tests.calls.facecheck.conftest import canvas, encoding_of
from tests.identity.conftest import face_bytes, jpeg, png_with_script, upload

pytestmark = pytest.mark.django_db


def two_faces() -> bytes:
    out = io.BytesIO()
    frame = canvas(("obama.jpg", 150, (170, 240)), ("biden.jpg", 150, (470, 240)))
    Image.fromarray(frame).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def prisoner(establishment_x):  # type: ignore[no-untyped-def]
    return factories.PrisonerFactory(establishment=establishment_x)


def url(prisoner, code: str = "xanadu") -> str:  # type: ignore[no-untyped-def]
    return reverse("identity_staff_prisoner_photo", args=[code, prisoner.prison_number])


def test_visits_admin_enrols_a_photo_and_it_is_audited(client, people, prisoner) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    page = client.get(url(prisoner))
    assert page.status_code == 200 and b"No photo is enrolled" in page.content
    assert b"data-selfie" in page.content and b"js/selfie.js" in page.content
    response = client.post(url(prisoner), {"photo": upload("p.jpg", face_bytes("obama.jpg"))})
    assert response.status_code == 302
    enrolment = FaceEnrolment.objects.get(prisoner=prisoner)
    encoding = decrypt_encoding(bytes(enrolment.encoding_encrypted))
    assert np.linalg.norm(encoding - encoding_of("obama.jpg")) < 0.1
    entry = AuditEntry.objects.get(action=AuditAction.PRISONER_ENROL)
    assert entry.actor == people.visits_admin_x and entry.target_id == str(prisoner.pk)
    assert entry.detail == {"prison_number": prisoner.prison_number, "replaced": False}
    assert b"A photo was enrolled" in client.get(url(prisoner)).content

    # A new photo replaces it (one enrolment per prisoner).
    client.post(url(prisoner), {"photo": upload("p.jpg", face_bytes("biden.jpg"))})
    enrolment = FaceEnrolment.objects.get(prisoner=prisoner)
    encoding = decrypt_encoding(bytes(enrolment.encoding_encrypted))
    assert np.linalg.norm(encoding - encoding_of("biden.jpg")) < 0.1
    assert AuditEntry.objects.filter(action=AuditAction.PRISONER_ENROL).count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (jpeg(), b"No face was found"),
        (two_faces(), b"shows 2 faces"),
        (b"not an image at all", b"There is a problem"),
        (png_with_script(), b"something other than a picture"),
    ],
)
def test_bad_photos_get_a_clear_error_and_change_nothing(  # type: ignore[no-untyped-def]
    client, people, prisoner, content, message
) -> None:
    client.force_login(people.visits_admin_x)
    response = client.post(url(prisoner), {"photo": upload("p.jpg", content)})
    assert response.status_code == 200
    assert b"There is a problem" in response.content and message in response.content
    assert not FaceEnrolment.objects.filter(prisoner=prisoner).exists()
    assert not AuditEntry.objects.filter(action=AuditAction.PRISONER_ENROL).exists()


def test_missing_photo_is_an_error(client, people, prisoner) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    response = client.post(url(prisoner), {})
    assert response.status_code == 200 and b"Choose a photo" in response.content
    assert not FaceEnrolment.objects.exists()


@pytest.mark.parametrize(("who", "status"), [("officer_x", 403), ("visits_admin_y", 404)])
def test_only_visits_admins_of_that_prison(client, people, prisoner, who, status) -> None:  # type: ignore[no-untyped-def]
    client.force_login(getattr(people, who))
    assert client.get(url(prisoner)).status_code == status
    response = client.post(url(prisoner), {"photo": upload("p.jpg", face_bytes("obama.jpg"))})
    assert response.status_code == status
    assert not FaceEnrolment.objects.exists()


def test_a_prisoner_of_another_prison_or_unknown_is_not_found(  # type: ignore[no-untyped-def]
    client, people, establishment_y
) -> None:
    elsewhere = factories.PrisonerFactory(establishment=establishment_y)
    client.force_login(people.visits_admin_x)
    assert client.get(url(elsewhere)).status_code == 404
    assert (
        client.get(reverse("identity_staff_prisoner_photo", args=["xanadu", "Z9999ZZ"])).status_code
        == 404
    )
    long = reverse("identity_staff_prisoner_photo", args=["xanadu", "A" * 300])
    assert client.get(long).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, prisoner) -> None:  # type: ignore[no-untyped-def]
    response = client.get(url(prisoner))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_shows_who_has_a_photo_and_finds_by_number_or_name(  # type: ignore[no-untyped-def]
    client, people, establishment_x, django_assert_max_num_queries
) -> None:
    enrolled = factories.PrisonerFactory(establishment=establishment_x, last_name="Abbott")
    FaceEnrolment.objects.create(prisoner=enrolled, encoding_encrypted=b"x")
    without = factories.PrisonerFactory(establishment=establishment_x, last_name="Zephyr")
    elsewhere = factories.PrisonerFactory(last_name="Abbott")
    for _ in range(60):  # more than a page
        factories.PrisonerFactory(establishment=establishment_x, last_name="Middleton")
    client.force_login(people.visits_admin_x)
    listing_url = reverse("identity_staff_prisoners", args=["xanadu"])
    with django_assert_max_num_queries(10):
        first = client.get(listing_url).content.decode()
    assert "62 prisoners" in first and "Page 1 of 2" in first
    assert enrolled.prison_number in first and "Enrolled" in first
    found = client.get(listing_url, {"q": "abbott"}).content.decode()
    assert enrolled.prison_number in found and elsewhere.prison_number not in found
    by_number = client.get(listing_url, {"q": without.prison_number.lower()}).content.decode()
    assert without.prison_number in by_number and "<strong>None</strong>" in by_number
    hostile = client.get(listing_url, {"q": "<script>" * 50, "page": "x' OR 1=1"})
    assert hostile.status_code == 200 and b"<script><script>" not in hostile.content
    assert (
        reverse("identity_staff_prisoners", args=["xanadu"]).encode()
        in client.get(reverse("staff_home")).content
    )


def test_visits_admin_removes_a_photo_and_it_is_audited(client, people, prisoner) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    client.post(url(prisoner), {"photo": upload("p.jpg", face_bytes("obama.jpg"))})
    assert b"Remove this prisoner" in client.get(url(prisoner)).content
    remove = reverse(
        "identity_staff_prisoner_photo_remove", args=["xanadu", prisoner.prison_number]
    )
    assert client.get(remove).status_code == 405
    response = client.post(remove, follow=True)
    assert response.redirect_chain[-1][0] == url(prisoner)
    assert b"is removed" in response.content and b"No photo is enrolled" in response.content
    assert not FaceEnrolment.objects.filter(prisoner=prisoner).exists()
    entry = AuditEntry.objects.get(action=AuditAction.PRISONER_ENROL_REMOVE)
    assert entry.actor == people.visits_admin_x and entry.target_id == str(prisoner.pk)
    # Again: nothing to remove, nothing audited.
    assert b"had no photo" in client.post(remove, follow=True).content
    assert AuditEntry.objects.filter(action=AuditAction.PRISONER_ENROL_REMOVE).count() == 1
    # An officer cannot; nor can a visits admin of another prison.
    FaceEnrolment.objects.create(prisoner=prisoner, encoding_encrypted=b"x")
    client.force_login(people.officer_x)
    assert client.post(remove).status_code == 403
    client.force_login(people.visits_admin_y)
    assert client.post(remove).status_code == 404
    assert FaceEnrolment.objects.filter(prisoner=prisoner).exists()
