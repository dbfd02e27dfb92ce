import pytest

from tests import factories

pytestmark = pytest.mark.e2e


def test_home_page_in_chromium_at_phone_width(live_server_url, launch_browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    factories.EstablishmentFactory(name="HMP Browserton")
    browser = launch_browser()
    page = browser.new_page(viewport={"width": 320, "height": 640})
    page.goto(live_server_url + "/")
    assert page.locator("h1").inner_text() == "Video calls with someone in prison"
    assert page.get_by_role("heading", name="HMP Browserton").is_visible()
    # Nothing wider than the phone: no horizontal scrolling at 320 px.
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    # The skip link is the first thing a keyboard user reaches.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)


def test_fake_camera_video_is_made(fake_video) -> None:  # type: ignore[no-untyped-def]
    video = fake_video("obama.jpg", "biden.jpg", seconds=1)
    header = video.read_bytes()[:80]
    assert header.startswith(b"YUV4MPEG2 W640 H480")
    assert video.stat().st_size > 640 * 480 * 1.5 * 29
