"""Face checks end to end in headless Chromium: a stranger on the family's camera
pauses the call on the terminal's page, and it resumes by itself once he is gone."""

from __future__ import annotations

import time

import pytest

from calls.models import Call, CallEvent, CallEventKind
from identity.crypto import encrypt_encoding
from identity.models import FaceEnrolment
from monitoring.models import Alert
from tests.calls.conftest import make_setup
from tests.calls.facecheck.conftest import encoding_of
from tests.e2e.test_call import signed_in_context, wait_for_frames

pytestmark = pytest.mark.e2e

PAUSED_TEXT = "Call paused: someone who is not approved"
# Each picture is shown this long, then the fake camera loops: obama, biden, obama, …
SEGMENT_SECONDS = 8
# Generous for a loaded 2-core machine; the test waits for real state changes.
SLOW_MS = 180_000


def head_and_shoulders(name: str, directory) -> str:  # type: ignore[no-untyped-def]
    """A 4:3 crop of a fixture around its face (biden.jpg is a narrow portrait: padded
    to 640×480 whole, its face would be too small to detect). Absolute path for
    fake_video."""

    from tests.calls.facecheck.conftest import face_box, face_image

    image = face_image(name)
    top, right, bottom, left = face_box(name)
    width = (right - left) * 2.6
    cx, cy = (left + right) / 2, (top + bottom) / 2
    box = (cx - width / 2, cy - width * 3 / 8, cx + width / 2, cy + width * 3 / 8)
    out = directory / f"crop-{name}"
    image.crop(tuple(round(v) for v in box)).resize((640, 480)).save(out, format="JPEG")
    return str(out)


@pytest.fixture(autouse=True)
def _relay_with_face_checks(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True
    settings.FACE_CHECKS_ENABLED = True
    settings.RELAY_CALL_HOOKS = ["calls.faces.attach_face_checks"]


def test_a_stranger_on_the_family_camera_pauses_the_call_and_it_resumes(  # type: ignore[no-untyped-def]
    live_server_url, launch_browser, fake_video, tmp_path
) -> None:
    setup = make_setup(started_minutes_ago=1, slot_minutes=30, call_minutes=30)
    establishment = setup.booking.establishment
    establishment.face_auto_resume_seconds = 2
    establishment.save()
    # The family's approved face is obama.jpg; the prisoner has no enrolment (the
    # terminal shares the same fake camera and is not checked).
    FaceEnrolment.objects.create(
        profile=setup.booking.lead_visitor,
        encoding_encrypted=encrypt_encoding(encoding_of("obama.jpg")),
    )
    stranger = head_and_shoulders("biden.jpg", tmp_path)
    video = fake_video("obama.jpg", stranger, "obama.jpg", seconds=SEGMENT_SECONDS)
    browser = launch_browser(video=video)

    family = signed_in_context(browser, live_server_url, setup.family).new_page()
    family.goto(f"{live_server_url}/calls/join/{setup.booking.reference}/")
    family.get_by_text("Your camera and microphone are working").wait_for(timeout=30_000)
    family.get_by_label("I have read the acceptable use policy").check()
    family.get_by_role("button", name="Join call").click()
    family.wait_for_url("**/calls/*/", timeout=30_000)

    terminal = signed_in_context(browser, live_server_url, setup.terminal_user).new_page()
    terminal.goto(f"{live_server_url}/calls/terminal/")
    terminal.get_by_role("button", name="Start call").click()
    terminal.wait_for_url("**/calls/terminal/call/*/", timeout=30_000)
    assert wait_for_frames(terminal, timeout=60) > 0

    # biden comes round within one loop of the fake camera: the terminal shows the pause.
    status = terminal.locator("#call-status")
    terminal.get_by_text(PAUSED_TEXT).wait_for(timeout=SLOW_MS)
    family.get_by_text(PAUSED_TEXT).wait_for(timeout=30_000)
    call = Call.objects.get()
    assert (call.status, call.pause_reason) in {("paused", "unapproved_face"), ("live", "")}
    paused = CallEvent.objects.filter(call=call, kind=CallEventKind.PAUSED).first()
    assert paused is not None and paused.detail["side"] == "family"
    assert paused.detail["decided_by"] == "face_check"
    assert Alert.objects.filter(call=call, side="family").exclude(snapshot="").exists()

    # obama again: the call resumes by itself after the auto-resume time.
    deadline = time.monotonic() + SLOW_MS / 1000
    while PAUSED_TEXT in status.inner_text():
        assert time.monotonic() < deadline, "the call never resumed"
        terminal.wait_for_timeout(250)
    terminal.get_by_text("You are connected").wait_for(timeout=30_000)
    resumed = CallEvent.objects.filter(call=call, kind=CallEventKind.RESUMED).first()
    assert resumed is not None and resumed.actor_id is None
    assert resumed.detail["side"] == "family" and resumed.detail["decided_by"] == "face_check"
    assert resumed.created_at > paused.created_at
