"""Django admin for visitors, bookings, calls, the audit log and alerts; a family's
export (subject access request) and erasure."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from bookings.models import Booking, BookingStatus, BookingVisitor
from calls.models import CallEvent, CallEventKind, CallStatus
from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    FaceEnrolment,
    GroupMember,
    VisitorProfile,
)
from monitoring.models import Alert, AlertKind
from tests import factories
from tests.identity.conftest import stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):  # type: ignore[no-untyped-def]
    user = factories.UserFactory(email="root@example.test")
    user.is_staff = user.is_superuser = True
    user.save()
    factories.mfa_enabled(user)
    client.force_login(user)  # a whole sign-in, two-factor step included (conftest)
    return client


def family(prisoner, *, email: str, name: str):  # type: ignore[no-untyped-def]
    """A lead visitor with a dependant, connected to ``prisoner``, with one completed
    call (and its events) and stored photos."""
    profile = factories.VisitorProfileFactory(
        user=factories.UserFactory(email=email), legal_name=name
    )
    connection_ = factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
    dependant = factories.DependantFactory(lead_visitor=profile, first_name=f"{name} junior")
    dependant.photo.save("d.jpg", ContentFile(f"photo of {name}'s child".encode()))
    check = factories.IdentityCheckFactory(profile=profile)
    check.id_image.save("i.jpg", ContentFile(f"passport of {name}".encode()))
    check.selfie_image.save("s.jpg", ContentFile(f"selfie of {name}".encode()))
    FaceEnrolment.objects.create(profile=profile, encoding_encrypted=b"SECRET-ENCODING")
    FaceEnrolment.objects.create(
        profile=profile, source="id_photo", encoding_encrypted=b"SECRET-ID-ENCODING"
    )
    booking = factories.BookingFactory(connection=connection_, status=BookingStatus.COMPLETED)
    BookingVisitor.objects.create(booking=booking, dependant=dependant)
    call = factories.CallFactory(booking=booking, status=CallStatus.ENDED)
    CallEvent.objects.create(call=call, kind=CallEventKind.STARTED, role="system")
    return profile


@pytest.fixture
def two_families(private_media):  # type: ignore[no-untyped-def]
    """Two families visiting the same prisoner (an ex-partner and a new partner)."""
    prisoner = factories.PrisonerFactory(prison_number="A1234BC")
    return (
        family(prisoner, email="ann@example.test", name="Ann Alpha"),
        family(prisoner, email="bea@example.test", name="Bea Beta"),
    )


CHANGELISTS = [
    "admin:identity_visitorprofile_changelist",
    "admin:identity_groupmember_changelist",
    "admin:bookings_booking_changelist",
    "admin:calls_call_changelist",
    "admin:calls_callevent_changelist",
    "admin:audit_auditentry_changelist",
    "admin:monitoring_alert_changelist",
    "admin:auth_user_changelist",
]


def add_rows() -> None:
    """One more of everything the changelists show."""
    prisoner = factories.PrisonerFactory()
    profile = factories.VisitorProfileFactory()
    booking = factories.BookingFactory(
        connection=factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
    )
    call = factories.CallFactory(booking=booking)
    CallEvent.objects.create(call=call, kind=CallEventKind.JOINED, role="family")
    GroupMember.objects.create(lead=profile, member=factories.VisitorProfileFactory())
    Alert.objects.create(
        establishment=booking.establishment, call=call, kind=AlertKind.PARTICIPANT_DROPPED
    )
    audit_record(
        actor=profile.user,
        action=AuditAction.BOOKING_CANCEL,
        establishment=booking.establishment,
        target=booking,
    )


@pytest.mark.parametrize("url_name", CHANGELISTS)
def test_changelists_render_with_a_bounded_number_of_queries(root, url_name: str) -> None:  # type: ignore[no-untyped-def]
    add_rows()
    with CaptureQueriesContext(connection) as one_row:
        assert root.get(reverse(url_name)).status_code == 200
    for _ in range(4):
        add_rows()
    with CaptureQueriesContext(connection) as five_rows:
        response = root.get(reverse(url_name))
    assert response.status_code == 200
    # list_select_related: more rows, not more queries.
    assert len(five_rows) == len(one_row), [q["sql"] for q in five_rows.captured_queries]
    assert len(five_rows) <= 12


def test_change_pages_render(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, _ = two_families
    booking = Booking.objects.get(lead_visitor=ann)
    add_rows()
    pages = [
        reverse("admin:identity_visitorprofile_change", args=[ann.pk]),
        reverse("admin:bookings_booking_change", args=[booking.pk]),
        reverse("admin:calls_call_change", args=[booking.call.pk]),
        reverse("admin:calls_callevent_change", args=[CallEvent.objects.first().pk]),
        reverse("admin:audit_auditentry_change", args=[AuditEntry.objects.first().pk]),
        reverse("admin:monitoring_alert_change", args=[Alert.objects.first().pk]),
        reverse("admin:identity_groupmember_change", args=[GroupMember.objects.first().pk]),
    ]
    for url in pages:
        assert root.get(url).status_code == 200, url


def test_the_visitor_page_shows_no_image_and_links_to_the_audited_review(
    root, two_families
) -> None:  # type: ignore[no-untyped-def]
    ann, _ = two_families
    check = ann.checks.get()
    content = root.get(reverse("admin:identity_visitorprofile_change", args=[ann.pk])).content
    page = content.decode()
    assert check.id_image.name not in page and check.selfie_image.name not in page
    assert Dependant.objects.get(lead_visitor=ann).photo.name not in page
    assert "SECRET-ENCODING" not in page
    code = ann.connections.get().prisoner.establishment.code
    assert reverse("identity_staff_check", args=[code, check.pk]) in page
    assert "Ann Alpha junior" in page  # the dependant inline


def test_history_cannot_be_changed_or_deleted_in_admin(root) -> None:  # type: ignore[no-untyped-def]
    add_rows()
    entry = AuditEntry.objects.get()
    event = CallEvent.objects.get()
    booking = Booking.objects.get()
    change = reverse("admin:audit_auditentry_change", args=[entry.pk])
    assert root.post(change, {"reason": "rewritten"}).status_code == 403
    assert (
        root.post(
            reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert root.get(reverse("admin:audit_auditentry_add")).status_code == 403
    event_change = reverse("admin:calls_callevent_change", args=[event.pk])
    assert root.post(event_change, {"reason": "rewritten"}).status_code == 403
    assert (
        root.post(
            reverse("admin:calls_callevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    booking_change = reverse("admin:bookings_booking_change", args=[booking.pk])
    assert root.post(booking_change, {"status": "cancelled"}).status_code == 403
    entry.refresh_from_db()
    booking.refresh_from_db()
    assert entry.reason == "" and booking.status == BookingStatus.CONFIRMED
    assert CallEvent.objects.filter(pk=event.pk, reason="").exists()


def test_search_by_reference_prison_number_email_and_name(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, bea = two_families
    booking = Booking.objects.get(lead_visitor=ann)
    typed = booking.short_reference_display.lower()  # "acd3-f7kx" as read out
    found = root.get(reverse("admin:bookings_booking_changelist"), {"q": typed}).context["cl"]
    assert list(found.result_list) == [booking]
    visitors = reverse("admin:identity_visitorprofile_changelist")
    by_email = root.get(visitors, {"q": "bea@example"}).context["cl"].result_list
    by_name = root.get(visitors, {"q": "alpha"}).context["cl"].result_list
    by_number = root.get(visitors, {"q": "A1234BC"}).context["cl"].result_list
    assert list(by_email) == [bea] and list(by_name) == [ann]
    assert set(by_number) == {ann, bea}


def export(root, profile):  # type: ignore[no-untyped-def]
    return root.post(
        reverse("admin:identity_visitorprofile_changelist"),
        {"action": "export_family", "_selected_action": [profile.pk]},
    )


def test_export_is_one_zip_of_the_familys_data_and_images_only(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, bea = two_families
    response = export(root, ann)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    check = ann.checks.get()
    dependant = Dependant.objects.get(lead_visitor=ann)
    assert names == {
        "family.json",
        "README.txt",
        f"images/check-{check.pk}-id.jpg",
        f"images/check-{check.pk}-selfie.jpg",
        f"images/dependant-{dependant.pk}.jpg",
    }
    assert archive.read(f"images/check-{check.pk}-id.jpg") == b"passport of Ann Alpha"
    data = json.loads(archive.read("family.json"))
    assert data["profile"]["legal_name"] == "Ann Alpha"
    assert data["account"]["email"] == "ann@example.test"
    assert data["consent"]["face_matching"] is True
    assert data["identity_checks"][0]["decision"] == "Waiting for review"
    assert [d["first_name"] for d in data["dependants"]] == ["Ann Alpha junior"]
    assert data["connections"][0]["prison_number"] == "A1234BC"
    [booking] = data["bookings"]
    assert booking["your_family_on_the_call"] == ["you", str(dependant)]
    assert booking["call"]["events"][0]["what"] == "Started"
    # The encoding is described, never included.
    assert data["face_encoding"]["exists"] is True and data["face_encoding"]["deleted_by"]
    assert data["face_encoding"]["made_from"] == ["Selfie", "Photo ID"]
    everything = b"".join(archive.read(name) for name in names)
    assert b"SECRET-ENCODING" not in everything and b"SECRET-ID-ENCODING" not in everything
    # Nothing of the other family visiting the same prisoner.
    assert b"Bea" not in everything and b"bea@example" not in everything
    assert Booking.objects.get(lead_visitor=bea).short_reference.encode() not in everything
    entry = AuditEntry.objects.get(action=AuditAction.FAMILY_EXPORT)
    assert entry.target_id == str(ann.pk) and entry.actor_label == "root@example.test"


def test_export_of_several_visitors_at_once_is_refused(root, two_families) -> None:  # type: ignore[no-untyped-def]
    response = root.post(
        reverse("admin:identity_visitorprofile_changelist"),
        {"action": "export_family", "_selected_action": [p.pk for p in two_families]},
        follow=True,
    )
    assert "each family is exported on its own" in response.content.decode()
    assert not AuditEntry.objects.filter(action=AuditAction.FAMILY_EXPORT).exists()


def erase(root, profile, *, confirm: bool = True):  # type: ignore[no-untyped-def]
    data = {"action": "erase_family", "_selected_action": [profile.pk]}
    if confirm:
        data["post"] = "yes"
    return root.post(reverse("admin:identity_visitorprofile_changelist"), data, follow=True)


def test_erase_asks_first(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, _ = two_families
    response = erase(root, ann, confirm=False)
    page = response.content.decode()
    assert "Erase this family?" in page and "Yes, erase this family" in page
    assert VisitorProfile.objects.get(pk=ann.pk).legal_name == "Ann Alpha"


def test_erase_deletes_photos_and_encodings_and_anonymises_the_history(  # type: ignore[no-untyped-def]
    root, two_families, private_media, django_capture_on_commit_callbacks
) -> None:
    ann, bea = two_families
    ann_files = {ann.checks.get().id_image.name, ann.checks.get().selfie_image.name}
    ann_files.add(Dependant.objects.get(lead_visitor=ann).photo.name)
    future = factories.BookingFactory(connection=ann.connections.get())
    with django_capture_on_commit_callbacks(execute=True):
        response = erase(root, ann)
    assert "The family is erased" in response.content.decode()
    remaining = {str(path.relative_to(private_media)) for path in stored_files(private_media)}
    assert not remaining & ann_files
    assert len(remaining) == 3  # Bea's three photos are untouched
    assert not FaceEnrolment.objects.filter(profile=ann).exists()
    assert FaceEnrolment.objects.filter(profile=bea).exists()
    # The completed booking and its call stay for the prison, with nobody's name on it.
    ann.refresh_from_db()
    assert ann.legal_name == "Deleted account" and ann.phone == ""
    assert ann.date_of_birth.year == 1900
    dependant = Dependant.objects.get(lead_visitor=ann)
    assert (dependant.first_name, dependant.photo.name) == ("Deleted", "")
    user = User.objects.get(pk=ann.user_id)
    assert not user.is_active and "ann@example" not in user.email
    kept = Booking.objects.get(lead_visitor=ann, status=BookingStatus.COMPLETED)
    assert kept.call.events.count() == 1
    future.refresh_from_db()
    assert future.status == BookingStatus.CANCELLED
    assert Connection.objects.get(visitor=ann).status == ConnectionStatus.REVOKED
    entry = AuditEntry.objects.get(action=AuditAction.FAMILY_ERASE)
    assert entry.target_id == str(ann.pk) and entry.detail["files_deleted"] == 3
    assert "Ann" not in json.dumps(entry.detail)
    assert VisitorProfile.objects.get(pk=bea.pk).legal_name == "Bea Beta"


def test_a_family_with_no_history_is_deleted_outright(root, private_media) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    erase(root, profile)
    assert not VisitorProfile.objects.filter(pk=profile.pk).exists()
    assert not User.objects.filter(pk=profile.user_id).exists()
    assert AuditEntry.objects.get(action=AuditAction.FAMILY_ERASE).detail["account_deleted"]


def test_erase_is_refused_while_a_call_is_live(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, _ = two_families
    live = factories.BookingFactory(connection=ann.connections.get())
    factories.CallFactory(booking=live, status=CallStatus.LIVE)
    confirmation = erase(root, ann, confirm=False).content.decode()
    assert "calls is on now" in confirmation and "disabled" in confirmation
    response = erase(root, ann)
    assert "calls is on now" in response.content.decode()
    assert VisitorProfile.objects.get(pk=ann.pk).legal_name == "Ann Alpha"
    assert FaceEnrolment.objects.filter(profile=ann).exists()
    assert not AuditEntry.objects.filter(action=AuditAction.FAMILY_ERASE).exists()


def test_deleting_a_visitors_user_points_to_erase(root, two_families) -> None:  # type: ignore[no-untyped-def]
    ann, _ = two_families
    response = root.post(
        reverse("admin:auth_user_delete", args=[ann.user_id]), {"post": "yes"}, follow=True
    )
    assert "Erase this family" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:identity_visitorprofile_change", args=[ann.pk]
    )
    response = root.post(
        reverse("admin:auth_user_changelist"),
        {"action": "delete_selected", "_selected_action": [ann.user_id], "post": "yes"},
        follow=True,
    )
    assert "on their visitor record instead" in response.content.decode()
    assert User.objects.filter(pk=ann.user_id, is_active=True).exists()
    assert VisitorProfile.objects.get(pk=ann.pk).legal_name == "Ann Alpha"


def test_a_staff_account_can_still_be_deleted(root) -> None:  # type: ignore[no-untyped-def]
    staff = factories.UserFactory()
    response = root.post(reverse("admin:auth_user_delete", args=[staff.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=staff.pk).exists()
