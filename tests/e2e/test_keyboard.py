"""Keyboard only (issue 17): sign in, book a call and join it with Tab, Shift+Tab, Enter
and Space, never the mouse; the error summary takes the focus and its links move it to
the field; the focus ring is at least 3:1 against the background around it."""

from __future__ import annotations

from datetime import time

import pytest

from bookings.models import Booking, BookingStatus
from tests import factories
from tests.calls.conftest import make_setup
from tests.e2e.test_call import signed_in_context

pytestmark = pytest.mark.e2e

CEILING_MS = 60_000  # a ceiling for a loaded machine, not the expected time
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a test account's

# The focused element: a short description, whether it matches the selector, and the
# contrast of its focus ring (the better of the outline and the box-shadow ring) with
# the background around it (the first opaque background of its ancestors).
FOCUSED = """(selector) => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgb = (text) => {
    const m = text && text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(",").map((x) => parseFloat(x));
    return a === 0 ? null : [r, g, b];
  };
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const contrast = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  let background = [255, 255, 255];
  for (let p = el.parentElement; p; p = p.parentElement) {
    const c = rgb(getComputedStyle(p).backgroundColor);
    if (c) { background = c; break; }
  }
  const style = getComputedStyle(el);
  const rings = [];
  if (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) {
    rings.push(rgb(style.outlineColor));
  }
  const shadow = rgb(style.boxShadow);
  if (shadow && style.boxShadow !== "none") rings.push(shadow);
  const ratios = rings.filter(Boolean).map((c) => contrast(c, background));
  return {
    matches: selector ? el.matches(selector) : false,
    what: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
          (el.name ? "[name=" + el.name + "]" : "") + " " +
          (el.textContent || el.value || "").trim().slice(0, 40),
    ring: ratios.length ? Math.max(...ratios) : 0,
  };
}"""


def tab_to(page, selector: str, *, limit: int = 80) -> dict:  # type: ignore[no-untyped-def]
    """Press Tab until the focus is on ``selector``; every stop on the way has a
    visible focus ring of at least 3:1."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED, selector)
        if focused is None:
            continue
        assert focused["ring"] >= 3, f"focus ring {focused['ring']:.2f}:1 on {focused['what']}"
        if focused["matches"]:
            return focused
        seen.append(focused["what"])
    raise AssertionError(f"Tab never reached {selector}; it went through {seen}")


def _family_of_a_live_prison():  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory(name="HMP Keyton", code="keyton")
    for weekday in range(7):
        factories.VisitSessionFactory(
            establishment=establishment,
            weekday=weekday,
            start_time=time(9, 30),
            end_time=time(11, 0),
        )
    factories.TerminalFactory(establishment=establishment)
    prisoner = factories.PrisonerFactory(establishment=establishment, prison_number="K1234EY")
    user = factories.UserFactory(email="keys.family@example.test", password=PASSWORD)
    profile = factories.VisitorProfileFactory(user=user, legal_name="Jo Keys")
    factories.ConnectionFactory(visitor=profile, prisoner=prisoner)
    return establishment, user


def test_sign_in_and_book_a_call_with_the_keyboard_only(live_server_url, launch_browser) -> None:  # type: ignore[no-untyped-def]
    _family_of_a_live_prison()
    page = launch_browser().new_page(viewport={"width": 375, "height": 800})
    page.goto(live_server_url + "/accounts/login/?next=/visits/keyton/")

    # No password first: the error summary takes the focus and its link moves the focus
    # to the field.
    tab_to(page, "input[name=login]")
    page.keyboard.type("keys.family@example.test")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-error-summary]")
    page.wait_for_function("() => document.activeElement.matches('[data-error-summary]')")
    tab_to(page, "[data-error-summary] a[href='#id_password']", limit=3)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.name === 'password'")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/visits/keyton/", timeout=CEILING_MS)

    # Choose the first free time (Space on a radio), then Continue (Enter).
    tab_to(page, "input[name=slot]:not([disabled])", limit=150)
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    tab_to(page, "button[type=submit]", limit=200)
    page.keyboard.press("Enter")
    page.wait_for_url("**/visits/keyton/book/**", timeout=CEILING_MS)

    tab_to(page, "#id_aup")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/visits/call/**", timeout=CEILING_MS)
    assert page.locator("h1").inner_text() == "Your call is booked"
    assert Booking.objects.get().status == BookingStatus.CONFIRMED


def test_join_a_call_with_the_keyboard_only(live_server_url, launch_browser) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup(started_minutes_ago=1, slot_minutes=30)
    browser = launch_browser()
    page = signed_in_context(browser, live_server_url, setup.family).new_page()
    page.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    page.get_by_text("Your camera and microphone are working").wait_for(timeout=CEILING_MS)

    # Join without accepting: the error summary, its link to the checkbox, then Space.
    tab_to(page, "#join-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error-summary")
    tab_to(page, "#id_accept")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    tab_to(page, "#join-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/calls/*/", timeout=CEILING_MS)
    page.locator("#leave-button").wait_for(timeout=CEILING_MS)

    # The call's controls are reached and worked from the keyboard too.
    tab_to(page, "#mute-button")
    page.keyboard.press("Space")
    page.wait_for_function(
        "() => document.getElementById('mute-button').getAttribute('aria-pressed') === 'true'",
        timeout=CEILING_MS,
    )
    tab_to(page, "#leave-button")


@pytest.mark.parametrize("width", [320, 1280])
def test_the_focus_ring_is_3_to_1_on_every_background(  # type: ignore[no-untyped-def]
    width: int, live_server_url, launch_browser
) -> None:
    """Through the header (purple), the page (white) and the footer (soft grey)."""
    page = launch_browser().new_page(viewport={"width": width, "height": 800})
    page.goto(live_server_url + "/accounts/login/")
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED, "")
        if focused is None:
            break
        stops.append(focused)
    assert len(stops) >= 5, stops
    weak = [s for s in stops if s["ring"] < 3]
    assert not weak, weak


def test_pages_update_themselves_without_reloading(live_server_url, launch_browser) -> None:  # type: ignore[no-untyped-def]
    """No meta refresh (WCAG 2.2.1): the laptop's list and the "not open yet" page ask
    the server again and change only their region, saying so in a status message;
    "Check again" asks at once (here, from the keyboard)."""
    from datetime import timedelta

    setup = make_setup(started_minutes_ago=1, slot_minutes=30)
    booking = setup.booking
    opens_at, ends_at, free_after = booking.starts_at, booking.ends_at, booking.terminal_free_at
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CANCELLED)
    browser = launch_browser()

    laptop = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    laptop.goto(f"{live_server_url}/calls/terminal/")
    assert laptop.locator("meta[http-equiv=refresh]").count() == 0
    assert "There are no calls on this laptop today." in laptop.inner_text("main")
    laptop.evaluate("window.notReloaded = true")
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    tab_to(laptop, "[data-poll-now]")
    laptop.keyboard.press("Enter")
    laptop.get_by_text("The list of calls has changed.").wait_for(timeout=CEILING_MS)
    assert laptop.get_by_role("button", name="Start call").is_visible()
    assert laptop.evaluate("window.notReloaded") is True

    later = opens_at + timedelta(days=3)
    Booking.objects.filter(pk=booking.pk).update(
        starts_at=later,
        ends_at=later + (ends_at - opens_at),
        terminal_free_at=later + (free_after - opens_at),
    )
    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{booking.reference}/")
    assert family.locator("h1").inner_text() == "Your call is not open yet"
    assert family.locator("meta[http-equiv=refresh]").count() == 0
    family.evaluate("window.notReloaded = true")
    Booking.objects.filter(pk=booking.pk).update(
        starts_at=opens_at, ends_at=ends_at, terminal_free_at=free_after
    )
    tab_to(family, "[data-poll-now]")
    family.keyboard.press("Enter")
    family.locator("[data-poll-status]", has_text="Your call is open now.").wait_for(
        timeout=CEILING_MS
    )
    assert family.evaluate("window.notReloaded") is True
    tab_to(family, "[data-poll-region] a.button")
    family.keyboard.press("Enter")
    family.wait_for_url(f"**/calls/join/{booking.reference}/", timeout=CEILING_MS)
    family.locator("#join-button").wait_for(timeout=CEILING_MS)


def test_the_staff_week_says_it_scrolls_and_scrolls_from_the_keyboard(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser
) -> None:
    establishment = factories.EstablishmentFactory(code="weekton")
    for number in (1, 2):
        factories.TerminalFactory(establishment=establishment, name=f"Visits hall laptop {number}")
    officer = factories.StaffMembershipFactory(establishment=establishment).user
    page = signed_in_context(launch_browser(), live_server_url, officer).new_page()
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server_url}/staff/weekton/bookings/week/")
    cue = page.locator("#week-cue")
    assert cue.is_visible()
    assert "scroll it sideways" in cue.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the table scrolls
    region = tab_to(page, "#week-region")
    assert region["ring"] >= 3
    assert page.get_by_role("region", name=page.locator("h1").inner_text()).count() == 1
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    # Keyboard scrolling may be smooth (animated): wait for it, with a ceiling. (Every
    # predicate here is a function: Playwright evaluates a bare expression with eval()
    # when it has to poll, which the site's CSP refuses.)
    page.wait_for_function(
        "() => document.getElementById('week-region').scrollLeft > 0", timeout=CEILING_MS
    )
    # Wide enough for the whole week: no cue.
    page.set_viewport_size({"width": 1900, "height": 800})
    page.wait_for_function("() => document.getElementById('week-cue').hidden", timeout=CEILING_MS)
