"""The officer's side in headless Chromium: the dashboard shows the live call between
two browser participants; the officer watches it and ends it from the call page.

The family's camera is plain red and the terminal's plain blue, so the officer's page
can tell which side each video element shows. An officer sees and hears BOTH sides
(issue 13, defect 1): every mid of the monitor peer receives (getStats per receiver),
and each video element decodes the colour of its own side.
"""

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

# Per transceiver of a MonitorPeer: its kind, the side the relay's answer maps its mid
# to, and what its receiver got (inbound-rtp of that receiver only).
MONITOR_MEDIA = """async (expression) => {
  const peer = eval(expression);
  if (!peer || !peer.pc) return {};
  const out = {};
  for (const t of peer.pc.getTransceivers()) {
    if (!t.mid || !t.receiver.track) continue;
    const row = { kind: t.receiver.track.kind, side: (peer.tracks || {})[t.mid] || null,
                  framesDecoded: 0, packetsReceived: 0, bytesReceived: 0 };
    (await t.receiver.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      row.framesDecoded += r.framesDecoded || 0;
      row.packetsReceived += r.packetsReceived || 0;
      row.bytesReceived += r.bytesReceived || 0;
    });
    out[t.mid] = row;
  }
  return out;
}"""

# Each video element matching the selector: frames it presented and its mean colour.
VIDEO_ELEMENTS = """(selector) => [...document.querySelectorAll(selector)].map((v) => {
  const quality = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
  let rgb = null;
  if (v.videoWidth) {
    const canvas = document.createElement("canvas");
    canvas.width = 32; canvas.height = 24;
    const g = canvas.getContext("2d");
    g.drawImage(v, 0, 0, 32, 24);
    const d = g.getImageData(0, 0, 32, 24).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) {
      sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2];
    }
    rgb = sum.map((x) => Math.round(x / (d.length / 4)));
  }
  return { id: v.id, frames: quality.totalVideoFrames || 0, width: v.videoWidth, rgb };
})"""

CEILING = 90  # seconds: a ceiling for a loaded machine, not the expected time
SIDE_COLOUR = {"family": "red", "prisoner": "blue"}


@pytest.fixture(autouse=True)
def _relay_in_the_web_process(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True


def _colour(rgb: list[int] | None) -> str | None:
    if not rgb:
        return None
    red, _green, blue = rgb
    if red > 150 and red > blue + 80:
        return "red"
    if blue > 150 and blue > red + 80:
        return "blue"
    return None


def _media_complete(media: dict) -> bool:  # type: ignore[type-arg]
    rows = list(media.values())
    sides = sorted((row["kind"], row["side"]) for row in rows)
    if sides != [
        ("audio", "family"),
        ("audio", "prisoner"),
        ("video", "family"),
        ("video", "prisoner"),
    ]:
        return False
    for row in rows:
        if row["kind"] == "video" and row["framesDecoded"] < 5:
            return False
        if row["kind"] == "audio" and (row["packetsReceived"] < 5 or row["bytesReceived"] <= 0):
            return False
    return True


def assert_sees_and_hears_both_sides(  # type: ignore[no-untyped-def]
    page, peer_expression: str, video_selectors: dict[str, str]
) -> None:
    """Every mid receives, and each side's video element shows that side's camera.

    Polls the page's own counters until they hold or CEILING passes (then fails with
    what it saw): waits on the media, not on a fixed delay.
    """
    deadline = time.monotonic() + CEILING
    media: dict = {}  # type: ignore[type-arg]
    elements: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    while True:
        media = page.evaluate(MONITOR_MEDIA, peer_expression)
        elements = {
            side: page.evaluate(VIDEO_ELEMENTS, selector)
            for side, selector in video_selectors.items()
        }
        shown = {
            side: [e for e in found if e["frames"] > 0 and _colour(e["rgb"]) == SIDE_COLOUR[side]]
            for side, found in elements.items()
        }
        if _media_complete(media) and all(len(found) == 1 for found in shown.values()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the officer does not see and hear both sides: {media} {elements}")
        page.wait_for_timeout(500)


def test_officer_sees_the_live_call_and_terminating_it_ends_it_for_both_sides(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video
) -> None:
    setup = make_setup(started_minutes_ago=1, slot_minutes=30, call_minutes=30)
    code = setup.booking.establishment.code
    # Two cameras the officer's page can tell apart: the family red, the terminal blue.
    browser = launch_browser(video=fake_video("color=red", seconds=2))
    terminal_browser = launch_browser(video=fake_video("color=blue", seconds=2))

    officer = signed_in_context(browser, live_server_url, setup.officer).new_page()
    officer.goto(f"{live_server_url}/staff/{code}/dashboard/")
    officer.get_by_text("Live updates connected").wait_for(timeout=60_000)

    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=60_000)
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=60_000)

    terminal = signed_in_context(terminal_browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=60_000)
    family.get_by_text("You are connected").wait_for(timeout=60_000)
    assert wait_for_frames(family) > 0

    call = Call.objects.get()
    # The dashboard moved the tile to the live column by itself (pushed, no reload).
    tile = officer.locator(f'ul[data-column="live"] li[data-call="{call.pk}"]')
    tile.wait_for(timeout=60_000)
    assert setup.booking.prisoner.prison_number in tile.inner_text()

    # Watch: both sides, small, on the tile: seen (the right colour in each element)
    # and heard (audio RTP on both audio mids).
    tile.get_by_role("button", name="Watch").click()
    videos = f'li[data-call="{call.pk}"] .tile-videos video'
    assert_sees_and_hears_both_sides(
        officer,
        f"window.pvWatches.get('{call.pk}').peer",
        {"family": f"{videos}:nth-of-type(1)", "prisoner": f"{videos}:nth-of-type(2)"},
    )

    # Open the call page from the tile: both sides full size, then end the call.
    officer.locator(f'li[data-call="{call.pk}"] a.tile-open').click()
    officer.wait_for_url(f"**/staff/{code}/calls/{call.pk}/", timeout=60_000)
    officer.locator("#monitor-status").get_by_text("live").wait_for(timeout=60_000)
    assert_sees_and_hears_both_sides(
        officer, "window.pvMonitor", {"family": "#video-family", "prisoner": "#video-prisoner"}
    )
    # HQ opens the same call read-only: status only, kept current without a reload.
    hq_user = factories.StaffMembershipFactory(establishment=None, role=StaffRole.HQ).user
    hq = signed_in_context(browser, live_server_url, hq_user).new_page()
    hq.goto(f"{live_server_url}/staff/{code}/calls/{call.pk}/")
    assert hq.locator("#video-family").count() == 0
    assert hq.get_by_role("button", name="End call").count() == 0
    officer.get_by_label("Reason for ending the call").fill("Breach of the rules")
    officer.get_by_role("button", name="End call").click()

    family.get_by_text("Prison staff ended the call").wait_for(timeout=60_000)
    terminal.get_by_text("Prison staff ended the call").wait_for(timeout=60_000)
    officer.locator("#monitor-status").get_by_text("ended").wait_for(timeout=60_000)
    hq.locator("#monitor-status").get_by_text("ended").wait_for(timeout=60_000)
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
