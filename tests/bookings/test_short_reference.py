"""Short references (issue 14, item 4): 8 characters without look-alikes, unique (the
database says so, also when two bookings draw the same one), found in any case."""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from bookings import models as booking_models
from bookings import services
from bookings.models import REFERENCE_ALPHABET, Booking, normalise_short_reference
from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)


def staff_login(client, user) -> None:  # type: ignore[no-untyped-def]
    """Signed in with the two-factor step done, as staff must be."""
    client.force_login(user)
    try:
        from purplevisits.session_rules import mark_mfa_passed
    except ImportError:  # before the session rules existed, the TOTP device was enough
        return
    session = client.session
    mark_mfa_passed(session, user)
    session.save()


def test_a_booking_gets_a_short_reference_without_look_alikes(world) -> None:  # type: ignore[no-untyped-def]
    booking = services.booking_create(
        connection=world.connection, lead=world.profile, starts_at=uk(WED, 9, 30), aup_accepted=True
    )
    ref = booking.short_reference
    assert len(ref) == 8 and set(ref) <= set(REFERENCE_ALPHABET)
    assert not set("0O1IL5S2Z8BUV") & set(REFERENCE_ALPHABET)
    assert booking.short_reference_display == f"{ref[:4]}-{ref[4:]}"
    assert f"Reference: {booking.short_reference_display}" in mail.outbox[0].body


def test_the_database_keeps_references_unique(world) -> None:  # type: ignore[no-untyped-def]
    first = factories.BookingFactory(connection=world.connection, terminal=world.terminals[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.BookingFactory(
            connection=world.connection,
            terminal=world.terminals[1],
            starts_at=uk(WED, 11, 0),
            short_reference=first.short_reference,
        )


def test_a_reference_drawn_twice_is_drawn_again(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    taken = factories.BookingFactory(connection=world.connection, terminal=world.terminals[0])
    draws = itertools.chain([taken.short_reference, taken.short_reference], ["ACDEFGHJ"])
    # The field's default, as Django calls it (a cached property of the field).
    monkeypatch.setattr(
        Booking._meta.get_field("short_reference"), "_get_default", lambda: next(draws)
    )
    world.establishment.calls_per_month = 4
    world.establishment.save()
    booking = services.booking_create(
        connection=world.connection, lead=world.profile, starts_at=uk(WED, 9, 30), aup_accepted=True
    )
    assert booking.short_reference == "ACDEFGHJ"
    assert Booking.objects.count() == 2


def test_a_prisoners_request_drawing_a_taken_reference_is_drawn_again(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """As booking_create (issue 14, item 9): before, the clash was an IntegrityError
    that reached the visits admin as a server error."""
    taken = factories.BookingFactory(connection=world.connection, terminal=world.terminals[0])
    draws = itertools.chain([taken.short_reference], ["ACDEFGHK"])
    monkeypatch.setattr(
        Booking._meta.get_field("short_reference"), "_get_default", lambda: next(draws)
    )
    world.establishment.calls_per_month = 4
    world.establishment.save()
    request = services.booking_request_create(
        connection=world.connection, starts_at=uk(WED, 9, 30), actor=None
    )
    assert request.short_reference == "ACDEFGHK"
    assert request.status == "requested" and Booking.objects.count() == 2
    assert len(mail.outbox) == 1  # one email, for the request that was written


def test_references_are_read_in_any_case_with_a_dash_or_spaces() -> None:
    assert normalise_short_reference(" acde-fghj ") == "ACDEFGHJ"
    assert normalise_short_reference("ACDE FGHJ") == "ACDEFGHJ"
    assert normalise_short_reference("ACDEFGH0") == ""  # 0 is never used
    assert normalise_short_reference("ACDEFGH") == ""
    assert normalise_short_reference("<script>") == ""
    assert booking_models.REFERENCE_LENGTH == 8


def test_staff_find_a_booking_by_its_reference(client, world, people) -> None:  # type: ignore[no-untyped-def]
    booking = factories.BookingFactory(
        connection=world.connection,
        terminal=world.terminals[0],
        starts_at=uk(date(2026, 11, 9), 10, 15),
    )
    staff_login(client, people.officer_x)
    url = reverse("bookings:staff_day", args=[world.establishment.code])
    typed = booking.short_reference.lower()[:4] + " " + booking.short_reference.lower()[4:]
    response = client.get(url, {"ref": typed})
    content = response.content.decode()
    assert response.status_code == 200
    assert "Monday 9 November 2026" in content  # the booking's day, not today
    found = re.search(
        r'class="found" id="found-booking".*?data-short-reference>([^<]+)<', content, re.S
    )
    assert found and found.group(1) == booking.short_reference_display
    # Not here (another establishment's booking, or nothing): said plainly.
    elsewhere = factories.BookingFactory(
        connection=factories.ConnectionFactory(
            prisoner=factories.PrisonerFactory(establishment=factories.EstablishmentFactory())
        )
    )
    response = client.get(url, {"ref": elsewhere.short_reference})
    assert response.status_code == 404
    assert "No booking here has the reference" in response.content.decode()
    assert client.get(url, {"ref": "nonsense!"}).status_code == 404


def test_the_family_sees_the_reference(client, world) -> None:  # type: ignore[no-untyped-def]
    booking = factories.BookingFactory(connection=world.connection, terminal=world.terminals[0])
    client.force_login(world.user)
    detail = client.get(reverse("bookings:detail", args=[booking.reference])).content.decode()
    assert booking.short_reference_display in detail
    assert (
        booking.short_reference_display
        in client.get(reverse("bookings:my_bookings")).content.decode()
    )
