"""A whole call in headless Chromium: family and terminal through the real pages."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from calls.models import Call
from tests.calls.conftest import make_setup

pytestmark = pytest.mark.e2e

FRAMES_DECODED = """async () => {
  if (!window.pvCall || !window.pvCall.pc) return 0;
  const stats = await window.pvCall.pc.getStats();
  let frames = 0;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
  });
  return frames;
}"""


@pytest.fixture(autouse=True)
def _relay_in_the_web_process(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True  # the embedded setup, also when REDIS_URL is set


def signed_in_context(browser, base_url: str, user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 800, "height": 700})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}]
    )
    return context


def wait_for_frames(page, minimum: int = 5, timeout: float = 30) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    frames = 0
    while time.monotonic() < deadline:
        frames = page.evaluate(FRAMES_DECODED)
        if frames >= minimum:
            return frames
        page.wait_for_timeout(250)
    return frames


def test_family_and_terminal_see_each_other_and_the_call_ends_on_time(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video
) -> None:
    # One-minute calls in a two-minute slot that started 50 seconds ago: the call ends
    # a minute after both sides are connected, or at the slot's end if that is sooner.
    setup = make_setup(started_minutes_ago=50 / 60, slot_minutes=2, call_minutes=1)
    browser = launch_browser(video=fake_video("obama.jpg", "biden.jpg", seconds=2))

    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=15_000)
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=15_000)
    status = family.locator("#call-status")
    try:
        family.get_by_text("Waiting for the prison to join").wait_for(timeout=15_000)
    except Exception:
        pytest.fail(f"family page says: {status.inner_text()!r}")

    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=15_000)

    assert wait_for_frames(family) > 0
    assert wait_for_frames(terminal) > 0
    family.get_by_text("You are connected").wait_for(timeout=10_000)
    countdown = family.locator("#call-countdown").inner_text()
    assert countdown.startswith("0:"), countdown

    call = Call.objects.get()
    assert call.status == "live"
    # The call ends by itself at the allowed time (the slot's end).
    family.get_by_text("Time is up").wait_for(timeout=100_000)
    terminal.get_by_text("Time is up").wait_for(timeout=10_000)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "time_up")
    assert call.ends_at is not None and call.ended_at is not None
    assert call.ended_at >= call.ends_at
    assert call.ends_at <= setup.booking.ends_at
