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


def wait_for_frames(page, minimum: int = 5, timeout: float = 90) -> int:  # type: ignore[no-untyped-def]
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
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=60_000)
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=60_000)
    status = family.locator("#call-status")
    try:
        family.get_by_text("Waiting for the prison to join").wait_for(timeout=60_000)
    except Exception:
        pytest.fail(f"family page says: {status.inner_text()!r}")

    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=60_000)

    assert wait_for_frames(family) > 0
    assert wait_for_frames(terminal) > 0
    family.get_by_text("You are connected").wait_for(timeout=60_000)
    countdown = family.locator("#call-countdown").inner_text()
    assert countdown.startswith("0:"), countdown

    call = Call.objects.get()
    assert call.status == "live"
    # The call ends by itself at the allowed time (the slot's end).
    family.get_by_text("Time is up").wait_for(timeout=100_000)
    terminal.get_by_text("Time is up").wait_for(timeout=60_000)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "time_up")
    assert call.ends_at is not None and call.ended_at is not None
    assert call.ended_at >= call.ends_at
    assert call.ends_at <= setup.booking.ends_at


# The same browser peer connection offers again (``restart``: after restartIce(), as on
# a network change). Resolves with the ICE ufrag and DTLS fingerprint of the relay's
# answer to it (all of them, sorted), once the page has applied that answer.
TRANSPORT_OF = """const transportOf = (sdp) => [
  [...new Set([...sdp.matchAll(/a=ice-ufrag:(.*)/g)].map((m) => m[1].trim()))].sort(),
  [...new Set([...sdp.matchAll(/a=fingerprint:(.*)/g)].map((m) => m[1].trim()))].sort(),
];
"""
REOFFER = (
    TRANSPORT_OF
    + """async (restart) => {
  const pc = window.pvCall.pc;
  window.pvStates = [];
  pc.addEventListener("connectionstatechange", () => window.pvStates.push(pc.connectionState));
  const apply = pc.setRemoteDescription.bind(pc);
  const answered = new Promise((resolve) => {
    pc.setRemoteDescription = async (description) => {
      await apply(description);
      resolve();
    };
  });
  if (restart) pc.restartIce();
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  window.pvCall.ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
  await answered;
  // As Chromium keeps it (one fingerprint), like TRANSPORT reads the first answer.
  return transportOf(pc.currentRemoteDescription.sdp);
}"""
)
TRANSPORT = (
    TRANSPORT_OF
    + """() => {
  const sdp = window.pvCall.pc.currentRemoteDescription.sdp;
  return transportOf(sdp);
}"""
)


@pytest.mark.parametrize("restart", [False, True], ids=["same-ice", "ice-restart"])
def test_a_new_offer_on_the_same_browser_connection_keeps_the_media(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video, restart
) -> None:
    """Issue 13, defect 2: "a new offer renegotiates" (SIGNALLING.md).

    Same ICE credentials: the relay answers from the peer it has (same ufrag and
    fingerprint) and the connection never leaves "connected". After restartIce() the
    relay, which cannot restart ICE, answers from a fresh peer; Chromium restarts ICE
    and DTLS on the same connection and media goes on.
    """
    setup = make_setup(started_minutes_ago=1, slot_minutes=30, call_minutes=30)
    browser = launch_browser(video=fake_video("color=red", seconds=2))
    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=60_000)
    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=60_000)
    assert wait_for_frames(family, minimum=10, timeout=90) >= 10
    assert wait_for_frames(terminal, minimum=10, timeout=90) >= 10
    before = family.evaluate(TRANSPORT)

    answer = family.evaluate(REOFFER, restart)
    if restart:
        assert answer != before  # a fresh relay peer
    else:
        assert answer == before  # renegotiated on the relay's existing peer
    # Media keeps arriving, both ways, on the same browser connection.
    family_frames = family.evaluate(FRAMES_DECODED)
    terminal_frames = terminal.evaluate(FRAMES_DECODED)
    assert wait_for_frames(family, minimum=family_frames + 30, timeout=90) >= family_frames + 30
    assert (
        wait_for_frames(terminal, minimum=terminal_frames + 30, timeout=90) >= terminal_frames + 30
    )
    assert family.evaluate("window.pvCall.pc.connectionState") == "connected"
    if not restart:
        assert family.evaluate("window.pvStates") == []  # never left "connected"
