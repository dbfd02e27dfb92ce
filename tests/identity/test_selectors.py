import numpy as np
import pytest

from bookings.models import BookingVisitor
from identity.crypto import encrypt_encoding
from identity.models import FaceEnrolment
from identity.selectors import approved_encodings_for_booking, prisoner_encoding
from tests import factories

pytestmark = pytest.mark.django_db


def enrol(**owner: object) -> np.ndarray:
    encoding = np.random.default_rng(len(FaceEnrolment.objects.all())).normal(size=128)
    FaceEnrolment.objects.create(encoding_encrypted=encrypt_encoding(encoding), **owner)
    return encoding


def as_set(encodings: list[np.ndarray]) -> set[bytes]:
    return {e.tobytes() for e in encodings}


def test_approved_visitors_and_dependants_on_the_booking() -> None:
    booking = factories.BookingFactory()
    lead = booking.lead_visitor
    lead_face = enrol(profile=lead)
    lead_id_face = enrol(profile=lead, source="id_photo")  # both of the lead's photos
    child = factories.DependantFactory(lead_visitor=lead)
    child_face = enrol(dependant=child)
    BookingVisitor.objects.create(booking=booking, dependant=child)
    # A second adult with an approved connection to the same prisoner.
    other = factories.ConnectionFactory(prisoner=booking.prisoner).visitor
    other_face = enrol(profile=other)
    BookingVisitor.objects.create(booking=booking, profile=other)
    # Someone with an encoding who is not on this booking.
    enrol(profile=factories.VisitorProfileFactory())

    assert as_set(approved_encodings_for_booking(booking)) == as_set(
        [lead_face, lead_id_face, child_face, other_face]
    )


def test_unapproved_people_are_left_out() -> None:
    booking = factories.BookingFactory()
    lead = booking.lead_visitor
    enrol(profile=lead)
    pending_child = factories.DependantFactory(lead_visitor=lead, status="pending")
    enrol(dependant=pending_child)
    BookingVisitor.objects.create(booking=booking, dependant=pending_child)
    unverified = factories.ConnectionFactory(
        prisoner=booking.prisoner,
        visitor=factories.VisitorProfileFactory(verification_status="submitted"),
    ).visitor
    enrol(profile=unverified)
    BookingVisitor.objects.create(booking=booking, profile=unverified)
    assert len(approved_encodings_for_booking(booking)) == 1

    booking.connection.status = "revoked"
    booking.connection.save()
    assert approved_encodings_for_booking(booking) == []


def test_prisoner_encoding() -> None:
    prisoner = factories.PrisonerFactory()
    assert prisoner_encoding(prisoner) is None
    face = enrol(prisoner=prisoner)
    assert np.array_equal(prisoner_encoding(prisoner), face)
