"""A selfie through the real page in headless Chromium, whose fake camera plays a face."""

from __future__ import annotations

import pytest

from identity.models import FaceEnrolment, IdentityCheck
from tests import factories
from tests.e2e.conftest import FACES

pytestmark = pytest.mark.e2e


def test_selfie_from_the_webcam_is_matched_with_the_id(
    private_media_dir, live_server_url, launch_browser, fake_video, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory(email="selfie@example.test")
    factories.VisitorProfileFactory(user=user, verification_status="not_started")
    browser = launch_browser(video=fake_video("obama.jpg", seconds=3))
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto(live_server_url + "/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server_url + "/me/")

    page.goto(live_server_url + "/me/identity/")
    page.set_input_files("input[name=id_photo]", str(FACES / "obama2.jpg"))
    page.wait_for_selector("[data-selfie][data-camera-ready=true]", timeout=15000)
    page.click("[data-selfie-take]")
    page.wait_for_selector("[data-selfie][data-selfie-taken=true]", timeout=15000)
    assert page.evaluate("document.querySelector('input[name=selfie]').files.length") == 1
    assert page.is_visible("[data-selfie-preview]")
    page.screenshot(path=str(tmp_path / "selfie.png"), full_page=True)
    page.click("#identity-form button[type=submit]")
    page.wait_for_url(live_server_url + "/me/", timeout=60000)
    assert "Your photos have been sent for checking" in page.content()

    check = IdentityCheck.objects.get(profile__user=user)
    assert check.face_result == "match", check.face_result
    assert check.face_distance is not None and check.face_distance < 0.6
    assert FaceEnrolment.objects.filter(profile=check.profile).exists()
    assert len([p for p in private_media_dir.rglob("*.jpg")]) == 2


def test_without_a_camera_the_file_input_is_there(
    private_media_dir, live_server_url, launch_browser
) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory(email="nocam@example.test")
    factories.VisitorProfileFactory(user=user, verification_status="not_started")
    browser = launch_browser()
    context = browser.new_context(permissions=[])
    page = context.new_page()
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject(new Error('denied'));"
    )
    page.goto(live_server_url + "/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server_url + "/me/")
    page.goto(live_server_url + "/me/identity/")
    page.wait_for_selector("[data-selfie-status]:has-text('Choose a photo')", timeout=15000)
    assert page.is_visible("input[name=selfie]")
    assert page.get_attribute("input[name=selfie]", "capture") == "user"
