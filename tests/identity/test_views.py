from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from identity.images import clean_photo
from identity.models import (
    Connection,
    ConnectionStatus,
    FaceEnrolment,
    IdentityCheck,
    VerificationStatus,
)
from tests import factories
from tests.identity.conftest import (
    face_bytes,
    jpeg,
    png_bomb,
    png_with_script,
    side_by_side,
    stored_files,
    upload,
)

pytestmark = pytest.mark.django_db


class OnCommitClient:
    """A test client whose requests run their on-commit work (tasks, emails), as a
    real request does when its transaction commits."""

    def __init__(self, client, capture) -> None:  # type: ignore[no-untyped-def]
        self.client, self.capture = client, capture

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.client, name)

    def get(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.capture(execute=True):
            return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.capture(execute=True):
            return self.client.post(*args, **kwargs)


@pytest.fixture
def world(people, establishment_x):  # type: ignore[no-untyped-def]
    """family_a has a pending check and a pending connection at X; family_b exists."""
    profile_a = factories.VisitorProfileFactory(
        user=people.family_a, verification_status=VerificationStatus.SUBMITTED
    )
    factories.VisitorProfileFactory(user=people.family_b)
    photo = clean_photo(io.BytesIO(face_bytes("obama.jpg")))
    check = factories.IdentityCheckFactory(
        profile=profile_a, face_result="match", face_distance=0.35
    )
    check.id_image.save("id.jpg", photo)
    check.selfie_image.save("selfie.jpg", photo)
    prisoner = factories.PrisonerFactory(establishment=establishment_x)
    connection = factories.ConnectionFactory(visitor=profile_a, prisoner=prisoner, status="pending")
    return people, check, connection


# --- Permission matrix ---------------------------------------------------------------------

QUEUE, CHECK, IMAGE = "queue", "check", "image"


def staff_url(kind: str, code: str, check: IdentityCheck) -> str:
    if kind == QUEUE:
        return reverse("identity_staff_queue", args=[code])
    if kind == CHECK:
        return reverse("identity_staff_check", args=[code, check.pk])
    return reverse("identity_staff_check_image", args=[code, check.pk, "id"])


@pytest.mark.parametrize("kind", [QUEUE, CHECK, IMAGE])
@pytest.mark.parametrize(
    ("who", "code", "expected"),
    [
        ("family_a", "xanadu", {403, 404}),
        ("family_b", "xanadu", {403, 404}),
        ("officer_x", "xanadu", {403, 404}),
        ("visits_admin_x", "xanadu", {200}),
        ("visits_admin_y", "xanadu", {404}),
        ("visits_admin_y", "yardley", {404, 200}),  # own queue opens, X's check does not
        ("hq", "xanadu", {403, 404}),
    ],
)
def test_permission_matrix(client, world, kind, who, code, expected) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    client.force_login(getattr(people, who))
    response = client.get(staff_url(kind, code, check))
    if who == "visits_admin_y" and code == "yardley":
        expected = {200} if kind == QUEUE else {404}
    assert response.status_code in expected
    if kind == QUEUE and response.status_code == 200:
        shows_a = "Test User" in response.content.decode() or check.profile.legal_name in (
            response.content.decode()
        )
        assert shows_a is (code == "xanadu")


def test_anonymous_is_sent_to_sign_in(client, world) -> None:  # type: ignore[no-untyped-def]
    _, check, _ = world
    for kind in (QUEUE, CHECK):
        response = client.get(staff_url(kind, "xanadu", check))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_visits_admin_sees_id_and_selfie_side_by_side_with_result(client, world) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    client.force_login(people.visits_admin_x)
    page = client.get(staff_url(CHECK, "xanadu", check)).content.decode()
    assert reverse("identity_staff_check_image", args=["xanadu", check.pk, "id"]) in page
    assert reverse("identity_staff_check_image", args=["xanadu", check.pk, "selfie"]) in page
    assert "Faces match" in page and "0.350" in page


def test_image_view_is_private_and_logged(client, world) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    client.force_login(people.visits_admin_x)
    response = client.get(staff_url(IMAGE, "xanadu", check))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "no-store, private"
    assert response["Content-Disposition"].startswith("inline; filename=")
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8\xff")
    entry = AuditEntry.objects.get(action=AuditAction.ID_IMAGE_VIEW)
    assert entry.actor == people.visits_admin_x and entry.target_id == str(check.pk)


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("visits_admin_y", "xanadu"),
        ("visits_admin_y", "yardley"),
        ("officer_x", "xanadu"),
        ("hq", "xanadu"),
    ],
)
def test_staff_refused_an_image_get_404_and_it_is_logged(client, world, who, code) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    client.force_login(getattr(people, who))
    assert client.get(staff_url(IMAGE, code, check)).status_code == 404
    entry = AuditEntry.objects.get(action=AuditAction.ID_IMAGE_DENIED)
    assert entry.actor == getattr(people, who)
    assert not AuditEntry.objects.filter(action=AuditAction.ID_IMAGE_VIEW).exists()


def test_visitor_sees_own_image_but_not_another_s(client, world) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    url = reverse("me_check_image", args=[check.pk, "selfie"])
    client.force_login(people.family_a)
    response = client.get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store, private"
    client.force_login(people.family_b)
    assert client.get(url).status_code == 404
    entry = AuditEntry.objects.get(action=AuditAction.ID_IMAGE_DENIED)
    assert entry.actor == people.family_b


def test_private_files_are_under_random_names_and_not_served(client, world) -> None:  # type: ignore[no-untyped-def]
    people, check, _ = world
    name = check.id_image.name
    assert re.fullmatch(r"identity/identitycheck/[0-9a-f]{32}\.jpg", name)
    client.force_login(people.visits_admin_x)
    for path in ("/" + name, "/media/" + name, "/static/" + name, "/private/" + name):
        assert client.get(path).status_code == 404


def test_decision_through_the_page(
    client, world, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    people, check, connection = world
    client = OnCommitClient(client, django_capture_on_commit_callbacks)
    client.force_login(people.visits_admin_x)
    url = staff_url(CHECK, "xanadu", check)
    response = client.post(url, {"decision": "reject", "reason": ""})
    assert response.status_code == 200 and "Give a reason" in response.content.decode()
    check.refresh_from_db()
    assert check.status == "pending"
    response = client.post(url, {"decision": "approve", "reason": ""})
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.status == "approved"
    conn_url = reverse("identity_staff_connection", args=["xanadu", connection.pk])
    assert client.post(conn_url, {"decision": "approve"}).status_code == 302
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.APPROVED
    response = client.post(conn_url, {"reason": ""})
    assert "Give a reason" in response.content.decode()
    assert client.post(conn_url, {"reason": "Misuse of calls"}).status_code == 302
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.REVOKED
    assert len(mailoutbox) == 3


def test_officer_cannot_decide(client, world) -> None:  # type: ignore[no-untyped-def]
    people, check, connection = world
    client.force_login(people.officer_x)
    assert client.post(staff_url(CHECK, "xanadu", check), {"decision": "approve"}).status_code in (
        403,
        404,
    )
    url = reverse("identity_staff_connection", args=["xanadu", connection.pk])
    assert client.post(url, {"decision": "approve"}).status_code in (403, 404)
    check.refresh_from_db()
    connection.refresh_from_db()
    assert check.status == "pending" and connection.status == "pending"


def test_queue_query_count_is_pinned(
    client, world, django_assert_max_num_queries, establishment_x
) -> None:  # type: ignore[no-untyped-def]
    people, _, _ = world
    for _ in range(5):
        profile = factories.VisitorProfileFactory(verification_status="submitted")
        factories.IdentityCheckFactory(profile=profile)
        factories.ConnectionFactory(
            visitor=profile, prisoner=factories.PrisonerFactory(establishment=establishment_x)
        )
    client.force_login(people.visits_admin_x)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("identity_staff_queue", args=["xanadu"])).status_code == 200


# --- Staff home and MFA ----------------------------------------------------------------------


def test_staff_home_lists_establishments_with_links(client, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    page = client.get(reverse("staff_home")).content.decode()
    assert "HMP Xanadu" in page and reverse("identity_staff_queue", args=["xanadu"]) in page
    client.force_login(people.family_a)
    assert client.get(reverse("staff_home")).status_code == 404


def test_staff_without_mfa_are_sent_to_set_it_up(client, establishment_x) -> None:  # type: ignore[no-untyped-def]
    membership = factories.StaffMembershipFactory(
        establishment=establishment_x, role="visits_admin", mfa=False
    )
    client.force_login(membership.user)
    for url in (
        reverse("staff_home"),
        reverse("identity_staff_queue", args=["xanadu"]),
        "/",
        "/me/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")
    # The set-up page itself, signing out and static files stay open.
    setup = client.get(reverse("mfa_activate_totp"))
    assert setup.status_code == 200 or setup["Location"] != reverse("mfa_activate_totp")
    assert client.get("/static/css/site.css").status_code != 302
    assert client.post(reverse("account_logout")).status_code == 302
    factories.mfa_enabled(membership.user)
    client.force_login(membership.user)
    assert client.get(reverse("staff_home")).status_code == 200


def test_superuser_without_mfa_is_sent_to_set_it_up(client) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory(is_superuser=True, is_staff=True)
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response["Location"] == reverse("mfa_activate_totp")


def test_totp_setup_page_opens_for_staff_without_mfa(client, establishment_x) -> None:  # type: ignore[no-untyped-def]
    membership = factories.StaffMembershipFactory(establishment=establishment_x, mfa=False)
    client.force_login(membership.user)
    response = client.get(reverse("mfa_activate_totp"))
    # allauth may first ask to confirm the password (reauthentication), never a loop to itself.
    assert response.status_code == 200 or reverse("account_reauthenticate") in response["Location"]


def test_families_and_terminals_do_not_need_mfa(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.family_a)
    assert client.get("/").status_code == 200
    terminal = factories.TerminalFactory(
        establishment=establishment_x, user=factories.UserFactory()
    )
    client.force_login(terminal.user)
    # A laptop is sent to its own call list, never to two-factor set-up.
    assert client.get("/")["Location"] == reverse("calls:terminal")
    assert client.get(reverse("calls:terminal")).status_code == 200


# --- The visitor's pages ------------------------------------------------------------------------


def test_overview_says_what_to_do_next(client, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.family_a)
    assert "Enter your details" in client.get(reverse("me")).content.decode()
    response = client.post(
        reverse("me_profile"),
        {
            "legal_name": "Jo Jones",
            "date_of_birth": "1980-02-03",
            "phone": "07700 900123",
            "country_of_residence": "GB",
        },
    )
    assert response.status_code == 302
    assert "Choose how you are checked" in client.get(reverse("me")).content.decode()
    client.post(reverse("me_consent"), {"consent": "yes"})
    assert "Prove who you are" in client.get(reverse("me")).content.decode()


def test_unverified_email_cannot_use_the_pages(client) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory(verified=False)
    client.force_login(user)
    response = client.get(reverse("me_profile"))
    assert response.status_code != 200 or "Confirm your email address" in response.content.decode()
    assert not hasattr(user, "visitor_profile")


@pytest.fixture
def consenting(client, people):  # type: ignore[no-untyped-def]
    factories.VisitorProfileFactory(
        user=people.family_a, verification_status=VerificationStatus.NOT_STARTED
    )
    client.force_login(people.family_a)
    return client


BAD_UPLOADS = {
    "text renamed .jpg": (b"just some text, not a photo at all\n" * 20, "not a photo"),
    "truncated jpeg": (face_bytes("obama.jpg")[:4000], "could not be read"),
    "1x1 image": (jpeg(1, 1), "too small"),
    "decompression bomb": (png_bomb(20000), "too big"),
    "png with script": (png_with_script(), "something other than a picture"),
}


@pytest.mark.parametrize("bad", list(BAD_UPLOADS))
@pytest.mark.parametrize("field", ["id_photo", "selfie"])
def test_bad_uploads_get_a_clear_message_and_write_nothing(
    consenting, private_media, bad, field
) -> None:  # type: ignore[no-untyped-def]
    content, message = BAD_UPLOADS[bad]
    files = {
        "id_photo": upload("id.jpg", face_bytes("obama2.jpg")),
        "selfie": upload("me.jpg", face_bytes("obama.jpg")),
    }
    files[field] = upload("photo.jpg", content)
    response = consenting.post(reverse("me_identity"), files)
    assert response.status_code == 200
    page = response.content.decode()
    assert "There is a problem" in page and message in page
    assert not IdentityCheck.objects.exists()
    assert stored_files(private_media) == []


def test_photo_with_two_faces_as_selfie_is_returned_with_what_to_fix(
    consenting, private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    consenting = OnCommitClient(consenting, django_capture_on_commit_callbacks)
    response = consenting.post(
        reverse("me_identity"),
        {
            "id_photo": upload("id.jpg", face_bytes("obama2.jpg")),
            "selfie": upload("me.jpg", side_by_side("obama.jpg", "biden.jpg")),
        },
    )
    assert response.status_code == 302
    page = consenting.get(reverse("me")).content.decode()
    assert "more than one face" in page and "Send new photos" in page
    assert stored_files(private_media) == []


def test_good_upload_is_matched(
    consenting, private_media, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    consenting = OnCommitClient(consenting, django_capture_on_commit_callbacks)
    response = consenting.post(
        reverse("me_identity"),
        {
            "id_photo": upload("passport.png", face_bytes("obama2.jpg")),
            "selfie": upload("me.jpg", face_bytes("obama.jpg")),
        },
    )
    assert response.status_code == 302
    check = IdentityCheck.objects.get()
    assert check.face_result == "match"
    assert len(stored_files(private_media)) == 2
    assert FaceEnrolment.objects.filter(profile=check.profile).exists()


def test_connection_form_gives_one_generic_error(consenting, establishment_x) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    prisoner = factories.PrisonerFactory(
        establishment=establishment_x,
        prison_number="A1234BC",
        last_name="Jones",
        date_of_birth=date(1985, 3, 14),
    )
    data = {
        "prison_number": "A1234BC",
        "last_name": "Jones",
        "date_of_birth": "1985-03-15",
        "establishment": "xanadu",
        "relationship": "partner",
    }
    page = consenting.post(reverse("me_connect"), data).content.decode()
    assert "We could not find a person in prison with those details" in page
    assert "date of birth is wrong" not in page.lower()
    page = consenting.post(
        reverse("me_connect"), {**data, "prison_number": "1234"}
    ).content.decode()
    assert "letter, four digits and two letters" in page
    assert not Connection.objects.exists()
    response = consenting.post(reverse("me_connect"), {**data, "date_of_birth": "1985-03-14"})
    assert response.status_code == 302
    assert Connection.objects.get().prisoner == prisoner


def test_delete_account_needs_the_password(client, people) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    factories.VisitorProfileFactory(user=people.family_a)
    client.force_login(people.family_a)
    page = client.post(reverse("me_delete"), {"password": "wrong"}).content.decode()
    assert "not your password" in page
    response = client.post(reverse("me_delete"), {"password": factories.PASSWORD})
    assert response.status_code == 302
    assert not User.objects.filter(pk=people.family_a.pk).exists()


def test_dependant_added_and_reviewed(
    client, people, establishment_x, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from identity.models import Dependant

    profile = factories.VisitorProfileFactory(user=people.family_a)
    factories.ConnectionFactory(
        visitor=profile, prisoner=factories.PrisonerFactory(establishment=establishment_x)
    )
    family = OnCommitClient(client, django_capture_on_commit_callbacks)
    family.force_login(people.family_a)
    assert family.get(reverse("me_dependant_add")).status_code == 200
    response = family.post(
        reverse("me_dependant_add"),
        {
            "first_name": "Kim",
            "last_name": "Jones",
            "date_of_birth": "2015-04-01",
            "photo": upload("kim.jpg", face_bytes("obama3.jpg")),
        },
    )
    assert response.status_code == 302
    dependant = Dependant.objects.get()
    assert dependant.face_result == "one_face"
    assert family.get(reverse("me_dependant_image", args=[dependant.pk])).status_code == 200

    family.force_login(people.visits_admin_x)
    queue = family.get(reverse("identity_staff_queue", args=["xanadu"])).content.decode()
    assert "Kim Jones" in queue
    url = reverse("identity_staff_dependant", args=["xanadu", dependant.pk])
    assert "One face found" in family.get(url).content.decode()
    photo = family.get(reverse("identity_staff_dependant_photo", args=["xanadu", dependant.pk]))
    assert photo.status_code == 200
    assert AuditEntry.objects.filter(action=AuditAction.ID_IMAGE_VIEW).count() == 1
    assert family.post(url, {"decision": "approve"}).status_code == 302
    dependant.refresh_from_db()
    assert dependant.status == "approved"
    assert AuditEntry.objects.filter(action=AuditAction.DEPENDANT_APPROVE).count() == 1

    family.force_login(people.visits_admin_y)
    assert (
        family.get(
            reverse("identity_staff_dependant_photo", args=["xanadu", dependant.pk])
        ).status_code
        == 404
    )


def test_me_links_each_approved_connection_to_its_booking_portal(client) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    from tests import factories

    connection = factories.ConnectionFactory()
    pending = factories.ConnectionFactory(visitor=connection.visitor, status="pending")
    client.force_login(connection.visitor.user)
    content = client.get(reverse("me")).content.decode()
    portal = reverse("bookings:portal", args=[connection.prisoner.establishment.code])
    assert f'href="{portal}"' in content
    other_portal = reverse("bookings:portal", args=[pending.prisoner.establishment.code])
    assert f'href="{other_portal}"' not in content


def test_staff_home_links_every_page_of_the_role(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    code = establishment_x.code
    client.force_login(people.officer_x)
    officer = client.get(reverse("staff_home")).content.decode()
    assert reverse("monitoring:dashboard", args=[code]) in officer
    assert reverse("bookings:staff_day", args=[code]) in officer
    assert reverse("monitoring:audit_log", args=[code]) not in officer
    assert reverse("identity_staff_queue", args=[code]) not in officer
    client.force_login(people.visits_admin_x)
    admin = client.get(reverse("staff_home")).content.decode()
    for url in (
        reverse("identity_staff_queue", args=[code]),
        reverse("monitoring:audit_log", args=[code]),
        reverse("bookings:staff_blocked_dates", args=[code]),
    ):
        assert url in admin
    client.force_login(people.hq)
    assert reverse("monitoring:national") in client.get(reverse("staff_home")).content.decode()
