"""The acceptable use policy is accepted once per booking (issue 14, item 6): accepted
when booking, the join page reminds the family of it and does not ask again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Booking
from calls.models import Call
from tests.calls.conftest import make_setup

pytestmark = pytest.mark.django_db


def test_a_policy_accepted_when_booking_is_not_asked_again(client) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()
    accepted_at = timezone.now() - timedelta(days=3)
    Booking.objects.filter(pk=setup.booking.pk).update(aup_accepted_at=accepted_at)
    client.force_login(setup.family)
    url = reverse("calls:join", args=[setup.booking.reference])
    page = client.get(url).content.decode()
    assert 'name="accept"' not in page  # no second tick box
    assert "data-aup-accepted" in page and "acceptable use policy" in page
    response = client.post(url, {})  # no tick: straight in
    call = Call.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("calls:room", args=[call.pk])
    # The acceptance stays the one given when booking.
    assert Booking.objects.get(pk=setup.booking.pk).aup_accepted_at == accepted_at


def test_a_booking_without_an_acceptance_still_asks(client) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()  # e.g. a staff test call: nobody accepted it yet
    client.force_login(setup.family)
    url = reverse("calls:join", args=[setup.booking.reference])
    assert 'name="accept"' in client.get(url).content.decode()
    assert client.post(url, {}).status_code == 200
    assert not Call.objects.exists()
