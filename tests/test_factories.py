from datetime import timedelta

import pytest

from bookings.models import BookingVisitor
from tests import factories

pytestmark = pytest.mark.django_db


def test_contract_factories_build_a_consistent_call() -> None:
    call = factories.CallFactory()
    booking = call.booking
    assert booking.prisoner == booking.connection.prisoner
    assert booking.lead_visitor == booking.connection.visitor
    assert booking.terminal.establishment == booking.establishment == booking.prisoner.establishment
    assert booking.ends_at - booking.starts_at == timedelta(minutes=30)
    assert list(
        BookingVisitor.objects.filter(booking=booking).values_list("profile", flat=True)
    ) == [booking.lead_visitor.pk]
    assert call.status == "waiting"
