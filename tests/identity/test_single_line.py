"""Issue 12 #8: names and other one-line text never reach an email header with a line
break in them: the forms refuse it by the field, and the subject builders make text
already stored into one line instead of crashing (BadHeaderError) and losing the email."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from bookings import notifications
from identity import forms
from identity.images import clean_photo
from identity.models import Dependant
from purplevisits.text import SINGLE_LINE_MESSAGE, one_line
from tests import factories
from tests.identity.conftest import face_bytes, staff_login, upload
from tests.identity.test_views import OnCommitClient

pytestmark = pytest.mark.django_db

BROKEN = ["Amy\nBcc: everyone@example.test", "Amy\r\nX", "Amy\tLee", "Amy\u2028Lee", "A\x00my"]


@pytest.mark.parametrize("name", BROKEN)
def test_dependant_form_refuses_a_name_on_two_lines_by_the_field(name: str) -> None:
    form = forms.DependantForm(
        {"first_name": name, "last_name": "Lee", "date_of_birth": "2015-04-01"},
        {"photo": upload("kim.jpg", face_bytes("obama3.jpg"))},
    )
    assert not form.is_valid()
    assert str(SINGLE_LINE_MESSAGE) in form.errors["first_name"]
    assert "last_name" not in form.errors and "photo" not in form.errors


@pytest.mark.parametrize(
    ("form_class", "field", "data"),
    [
        (
            forms.ProfileForm,
            "legal_name",
            {
                "date_of_birth": "1985-01-01",
                "phone": "07700 900123",
                "country_of_residence": "GB",
            },
        ),
        (
            forms.ConnectionForm,
            "last_name",
            {
                "prison_number": "A1234BC",
                "date_of_birth": "1985-03-14",
                "relationship": "partner",
            },
        ),
        (forms.DependantForm, "last_name", {"first_name": "Amy", "date_of_birth": "2015-04-01"}),
    ],
)
def test_every_one_line_name_field_refuses_a_line_break(form_class, field, data) -> None:  # type: ignore[no-untyped-def]
    form = form_class({**data, field: "Jones\nSmith"})
    assert not form.is_valid()
    assert form.errors[field] == [str(SINGLE_LINE_MESSAGE)]
    ok = form_class({**data, field: "Jones-Smith O'Neil"})
    ok.is_valid()
    assert field not in ok.errors


def test_the_page_shows_the_message_by_the_field_and_keeps_the_input(client, people) -> None:  # type: ignore[no-untyped-def]
    factories.VisitorProfileFactory(user=people.family_a)
    client.force_login(people.family_a)
    response = client.post(
        reverse("me_dependant_add"),
        {
            "first_name": "Amy\nBcc: x@example.test",
            "last_name": "Lee",
            "date_of_birth": "2015-04-01",
            "photo": upload("kim.jpg", face_bytes("obama3.jpg")),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Write this on one line" in page
    assert 'value="Lee"' in page  # nothing typed is lost
    assert not Dependant.objects.exists()


def test_approving_a_stored_name_with_a_line_break_sends_its_email(
    client, people, establishment_x, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """The tester's case: a 500 for the visits admin and the family's email lost."""
    profile = factories.VisitorProfileFactory(user=people.family_a)
    factories.ConnectionFactory(
        visitor=profile, prisoner=factories.PrisonerFactory(establishment=establishment_x)
    )
    # Stored before the forms refused it (or by another way in).
    dependant = factories.DependantFactory(
        lead_visitor=profile, first_name="Amy\nBcc: everyone@example.test", status="pending"
    )
    photo = clean_photo(io.BytesIO(face_bytes("obama3.jpg")))
    dependant.photo.save("dependant.jpg", ContentFile(photo.read()))
    admin = OnCommitClient(client, django_capture_on_commit_callbacks)
    staff_login(client, people.visits_admin_x)
    url = reverse("identity_staff_dependant", args=["xanadu", dependant.pk])
    response = admin.post(url, {"decision": "approve"})
    assert response.status_code == 302
    dependant.refresh_from_db()
    assert dependant.status == "approved"
    assert len(mailoutbox) == 1
    subject = mailoutbox[0].subject
    assert "\n" not in subject and "\r" not in subject
    assert "Amy Bcc: everyone@example.test is approved" in subject
    mailoutbox[0].message()  # the headers build: no BadHeaderError
    assert mailoutbox[0].to == [people.family_a.email]


def test_booking_subject_with_a_prisoner_name_on_two_lines_is_one_line() -> None:
    booking = factories.BookingFactory(
        prisoner=factories.PrisonerFactory(first_name="Sam\r\nBcc: x@example.test")
    )
    message = notifications.build_booking_email(booking, notifications.CONFIRMED)
    assert message.subject == "Your video call with Sam Bcc: x@example.test " + (
        f"{booking.prisoner.last_name} is booked"
    )
    message.message()  # no BadHeaderError


def test_one_line_collapses_every_kind_of_break() -> None:
    assert one_line(" a\n\nb\r\nc\td\u2028e\x00f  ") == "a b c d e f"
    assert one_line(date(2020, 1, 2).isoformat()) == "2020-01-02"
