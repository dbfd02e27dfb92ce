"""A family books a call through the real pages in headless Chromium."""

from __future__ import annotations

from datetime import UTC, time, timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from tests import factories

pytestmark = pytest.mark.e2e


def _family_of_a_live_prison(  # type: ignore[no-untyped-def]
    *, name: str, code: str, sessions_end: time, prison_number: str, email: str, legal_name: str
):
    """A prison with a session every day from 09:30, one laptop, and an approved family
    (password ``correct-horse-battery-staple``) connected to one of its prisoners."""
    establishment = factories.EstablishmentFactory(name=name, code=code)
    for weekday in range(7):
        factories.VisitSessionFactory(
            establishment=establishment,
            weekday=weekday,
            start_time=time(9, 30),
            end_time=sessions_end,
        )
    factories.TerminalFactory(establishment=establishment)
    prisoner = factories.PrisonerFactory(establishment=establishment, prison_number=prison_number)
    user = factories.UserFactory(email=email, password="correct-horse-battery-staple")
    profile = factories.VisitorProfileFactory(user=user, legal_name=legal_name)
    factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
    return establishment, prisoner, user, profile


def test_family_books_a_call_in_chromium_at_phone_width(
    live_server_url, launch_browser, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    establishment, prisoner, user, profile = _family_of_a_live_prison(
        name="HMP Browserton",
        code="browserton",
        sessions_end=time(10, 0),
        prison_number="A1234BC",
        email="browser.family@example.test",
        legal_name="Jo Browser",
    )
    factories.DependantFactory(lead_visitor=profile, first_name="Kim", last_name="Browser")

    browser = launch_browser()
    page = browser.new_page(viewport={"width": 320, "height": 640})
    page.goto(live_server_url + "/accounts/login/?next=/visits/browserton/")
    page.fill("input[name=login]", "browser.family@example.test")
    page.fill("input[name=password]", "correct-horse-battery-staple")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url("**/visits/browserton/")
    assert "Book a video call at HMP Browserton" in page.locator("h1").inner_text()
    first_day = timezone.localdate() + timedelta(days=establishment.min_notice_days)
    page.locator("input[name=slot]").first.check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/visits/browserton/book/**")
    page.get_by_label("Kim Browser", exact=False).check()
    page.get_by_label("I accept the acceptable use policy for this call").check()
    page.get_by_role("button", name="Book the call").click()
    page.wait_for_url("**/visits/call/**")
    assert page.locator("h1").inner_text() == "Your call is booked"
    assert page.locator("#booking-status").inner_text() == "Confirmed"
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.screenshot(path=str(tmp_path / "booked.png"), full_page=True)

    booking = Booking.objects.get()
    assert booking.status == BookingStatus.CONFIRMED
    assert timezone.localtime(booking.starts_at).date() == first_day
    assert booking.visitors.count() == 2


def test_family_books_moves_and_cancels_a_call_in_chromium(live_server_url, launch_browser) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: book, then "Change the time" through the portal's list marked for the
    move, then cancel, all through the real pages."""
    establishment, prisoner, user, profile = _family_of_a_live_prison(
        name="HMP Moveton",
        code="moveton",
        sessions_end=time(11, 45),
        prison_number="A7654DC",
        email="moving.family@example.test",
        legal_name="Jo Mover",
    )

    browser = launch_browser()
    page = browser.new_page(viewport={"width": 360, "height": 720})
    page.goto(live_server_url + "/accounts/login/?next=/visits/moveton/")
    page.fill("input[name=login]", "moving.family@example.test")
    page.fill("input[name=password]", "correct-horse-battery-staple")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url("**/visits/moveton/")

    # Book the first free time.
    page.locator("input[name=slot]:not([disabled])").first.check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/visits/moveton/book/**")
    page.get_by_label("I accept the acceptable use policy for this call").check()
    page.get_by_role("button", name="Book the call").click()
    page.wait_for_url("**/visits/call/**")
    assert page.locator("h1").inner_text() == "Your call is booked"
    booking = Booking.objects.get()
    first_start = booking.starts_at

    # Change the time: the portal's list, marked for this call.
    page.get_by_role("link", name="Change the time").click()
    page.wait_for_url("**/visits/moveton/?move=*")
    assert page.locator("h1").inner_text() == "Change the time of your call"
    own = page.locator(f'[data-slot-unavailable="{first_start:%Y-%m-%dT%H:%M:%SZ}"]')
    assert "your call is at this time now" in own.inner_text()
    choice = page.locator("input[name=slot]:not([disabled])").first
    new_key = choice.get_attribute("value")
    choice.check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/move/?slot=*")
    assert page.locator("#move-new").is_visible()
    page.get_by_role("button", name="Move the call").click()
    page.wait_for_url(f"**/visits/call/{booking.reference}/")
    assert "Your call has moved" in page.locator("body").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    booking.refresh_from_db()
    assert booking.starts_at != first_start
    assert f"{booking.starts_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" == new_key
    assert booking.status == BookingStatus.CONFIRMED and booking.calendar_sequence == 1
    assert Booking.objects.count() == 1

    # Cancel it.
    page.get_by_role("link", name="Cancel this call").click()
    page.get_by_role("button", name="Yes, cancel the call").click()
    page.wait_for_url("**/visits/")
    assert "Your call is cancelled" in page.locator("body").inner_text()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED and booking.calendar_sequence == 2
