"""The join page's optional tick box (issue 16) in headless Chromium: frames of the
camera check go to the server, the page says what became of them, Join never waits."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from identity.crypto import encrypt_encoding
from identity.faces import find_one_face
from identity.models import EnrolmentSource, FaceEnrolment
from tests.calls.conftest import make_setup
from tests.e2e.conftest import FACES

pytestmark = pytest.mark.e2e

TICK = "Use 3 pictures from this camera check to recognise me better on calls."


@pytest.fixture(autouse=True)
def _relay_in_the_web_process(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True


def signed_in_page(browser, base_url: str, user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 360, "height": 800})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}]
    )
    return context.new_page()


def with_selfie_of_obama():  # type: ignore[no-untyped-def]
    setup = make_setup()
    found = find_one_face(io.BytesIO((FACES / "obama.jpg").read_bytes()))
    assert found.encoding is not None
    FaceEnrolment.objects.create(
        profile=setup.booking.lead_visitor,
        source=EnrolmentSource.SELFIE,
        encoding_encrypted=encrypt_encoding(found.encoding),
    )
    return setup


def tick_and_read_the_answer(page, base_url: str, setup) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{base_url}/calls/join/{setup.booking.reference}/")
    page.get_by_text("Your camera and microphone are working").wait_for(timeout=60_000)
    join = page.get_by_role("button", name="Join call")
    assert join.is_enabled()
    page.get_by_label(TICK).check()
    # The Join button does not wait for the pictures.
    assert join.is_enabled()
    status = page.locator("#precall-enrol-status")
    page.wait_for_function(
        """() => {
          const classes = document.getElementById("precall-enrol-status").classList;
          return classes.contains("precall-ok") || classes.contains("precall-problem");
        }""",
        timeout=60_000,
    )
    assert join.is_enabled()
    return status.inner_text()


def test_the_fake_cameras_picture_is_not_kept(  # type: ignore[no-untyped-def]
    private_media_dir, live_server_url, launch_browser
) -> None:
    setup = with_selfie_of_obama()
    browser = launch_browser()  # Chromium's own fake camera: a test pattern, no face
    page = signed_in_page(browser, live_server_url, setup.family)
    answer = tick_and_read_the_answer(page, live_server_url, setup)
    assert answer == (
        "We could not see just you in the pictures, so we did not keep them. Your call is "
        "not affected."
    )
    # They may tick it again to retry.
    assert not page.get_by_label(TICK).is_checked() and page.get_by_label(TICK).is_enabled()
    assert not FaceEnrolment.objects.filter(source=EnrolmentSource.PRECALL).exists()
    assert [path for path in private_media_dir.rglob("*") if path.is_file()] == []


def test_the_visitors_own_face_is_kept(  # type: ignore[no-untyped-def]
    private_media_dir, live_server_url, launch_browser, fake_video
) -> None:
    setup = with_selfie_of_obama()
    browser = launch_browser(video=fake_video("obama.jpg", seconds=3))
    page = signed_in_page(browser, live_server_url, setup.family)
    answer = tick_and_read_the_answer(page, live_server_url, setup)
    assert answer == "Thank you. We will use these pictures to recognise you better on your calls."
    assert page.get_by_label(TICK).is_disabled()  # done for this visit
    assert FaceEnrolment.objects.filter(
        profile=setup.booking.lead_visitor, source=EnrolmentSource.PRECALL
    ).exists()
    assert [path for path in private_media_dir.rglob("*") if path.is_file()] == []
    # And the call can still be joined.
    page.get_by_label("I have read the acceptable use policy").check()
    page.get_by_role("button", name="Join call").click()
    page.wait_for_url("**/calls/*/", timeout=60_000)
