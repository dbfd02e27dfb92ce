"""On the call page a family or laptop turns the microphone off and on (the other side
and monitors see it), and both see how good the connection is (issue 13)."""

from __future__ import annotations

import pytest

from tests.calls.conftest import make_setup
from tests.e2e.test_call import signed_in_context, wait_for_frames

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _relay_in_the_web_process(settings):  # type: ignore[no-untyped-def]
    # Before live_server_url forks the server: the embedded setup, also with REDIS_URL.
    settings.RELAY_IN_PROCESS = True


def test_mute_is_seen_by_the_other_side_and_the_monitor_and_quality_shows(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video
) -> None:
    setup = make_setup(started_minutes_ago=1, slot_minutes=30, call_minutes=20)
    browser = launch_browser(video=fake_video("obama.jpg", "biden.jpg", seconds=2))

    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=60_000)
    assert family.locator("#camera-stays-on").is_visible()
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=60_000)

    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=60_000)
    assert wait_for_frames(family) > 0
    assert wait_for_frames(terminal) > 0

    # Quality from getStats(): on loopback it settles on "good" for both sides.
    for page in (family, terminal):
        page.locator('#call-quality[data-quality="good"]').wait_for(timeout=60_000)
        assert page.locator("#call-quality").inner_text() == "Good connection"
        assert page.locator("#call-quality-hint").is_hidden()

    officer = signed_in_context(browser, live_server_url, setup.officer).new_page()
    call_id = family.locator("#call").get_attribute("data-call-id")
    code = setup.booking.establishment.code
    officer.goto(f"{live_server_url}/staff/{code}/calls/{call_id}/")

    family.get_by_role("button", name="Turn microphone off").click()
    assert family.evaluate(
        "() => window.pvCall.stream.getAudioTracks().every((t) => !t.enabled)"
    )
    terminal.locator("#other-muted").wait_for(state="visible", timeout=60_000)
    officer.get_by_text("Family: connected, microphone off").wait_for(timeout=60_000)

    family.get_by_role("button", name="Turn microphone on").click()
    terminal.locator("#other-muted").wait_for(state="hidden", timeout=60_000)
    assert family.evaluate("() => window.pvCall.stream.getAudioTracks().every((t) => t.enabled)")
    officer.get_by_text("Family: connected · Prison laptop: connected").wait_for(timeout=60_000)
