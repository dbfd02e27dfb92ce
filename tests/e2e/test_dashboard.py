"""The officer's side in headless Chromium: the dashboard shows the live call between
two browser participants; the officer watches it and ends it from the call page."""

from __future__ import annotations

import time

import pytest

from audit.models import AuditAction, AuditEntry
from calls.models import Call
from establishments.models import StaffRole
from tests import factories
from tests.calls.conftest import make_setup
from tests.e2e.test_call import signed_in_context, wait_for_frames

pytestmark = pytest.mark.e2e

MONITOR_FRAMES = """async (expression) => {
  const pc = eval(expression);
  if (!pc) return 0;
  const stats = await pc.getStats();
  let frames = 0;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
  });
  return frames;
}"""


@pytest.fixture(autouse=True)
def _relay_in_the_web_process(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True


def monitor_frames(page, expression: str, minimum: int = 3, timeout: float = 30) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    frames = 0
    while time.monotonic() < deadline:
        frames = page.evaluate(MONITOR_FRAMES, expression)
        if frames >= minimum:
            return frames
        page.wait_for_timeout(250)
    return frames


def test_officer_sees_the_live_call_and_terminating_it_ends_it_for_both_sides(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video
) -> None:
    setup = make_setup(started_minutes_ago=1, slot_minutes=30, call_minutes=30)
    code = setup.booking.establishment.code
    browser = launch_browser(video=fake_video("obama.jpg", "biden.jpg", seconds=2))

    officer = signed_in_context(browser, live_server_url, setup.officer).new_page()
    officer.goto(f"{live_server_url}/staff/{code}/dashboard/")
    officer.get_by_text("Live updates connected").wait_for(timeout=15_000)

    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=15_000)
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=15_000)

    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=15_000)
    family.get_by_text("You are connected").wait_for(timeout=20_000)
    assert wait_for_frames(family) > 0

    call = Call.objects.get()
    # The dashboard moved the tile to the live column by itself (pushed, no reload).
    tile = officer.locator(f'ul[data-column="live"] li[data-call="{call.pk}"]')
    tile.wait_for(timeout=15_000)
    assert setup.booking.prisoner.prison_number in tile.inner_text()

    # Watch: both sides, small, on the tile.
    tile.get_by_role("button", name="Watch").click()
    watched = f"window.pvWatches.get('{call.pk}').peer.pc"
    assert monitor_frames(officer, watched) > 0

    # Open the call page from the tile: both sides full size, then end the call.
    officer.locator(f'li[data-call="{call.pk}"] a.tile-open').click()
    officer.wait_for_url(f"**/staff/{code}/calls/{call.pk}/", timeout=15_000)
    officer.locator("#monitor-status").get_by_text("live").wait_for(timeout=15_000)
    assert monitor_frames(officer, "window.pvMonitor.pc") > 0
    # HQ opens the same call read-only: status only, kept current without a reload.
    hq_user = factories.StaffMembershipFactory(establishment=None, role=StaffRole.HQ).user
    hq = signed_in_context(browser, live_server_url, hq_user).new_page()
    hq.goto(f"{live_server_url}/staff/{code}/calls/{call.pk}/")
    assert hq.locator("#video-family").count() == 0
    assert hq.get_by_role("button", name="End call").count() == 0
    officer.get_by_label("Reason for ending the call (required)").fill("Breach of the rules")
    officer.get_by_role("button", name="End call").click()

    family.get_by_text("Prison staff ended the call").wait_for(timeout=15_000)
    terminal.get_by_text("Prison staff ended the call").wait_for(timeout=15_000)
    officer.locator("#monitor-status").get_by_text("ended").wait_for(timeout=15_000)
    hq.locator("#monitor-status").get_by_text("ended").wait_for(timeout=15_000)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "terminated")
    entry = AuditEntry.objects.get(action=AuditAction.CALL_TERMINATE)
    assert entry.actor == setup.officer
    assert entry.reason == "Breach of the rules"

    # Both pages stay usable on a 320 px wide screen: nothing wider than the screen.
    officer.set_viewport_size({"width": 320, "height": 640})
    for path in (f"/staff/{code}/calls/{call.pk}/", f"/staff/{code}/dashboard/"):
        officer.goto(f"{live_server_url}{path}")
        officer.wait_for_load_state("load")
        width = officer.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, (path, width)
