"""FaceChecker on real faces in synthetic video frames, with the real process pool.

Most scenarios drive the checks one at a time (``check_once``) with a fake clock, so a
minute of call takes a few seconds; the scheduler tests run the real loop briefly.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal

import av
import face_recognition
import numpy as np
import pytest
from PIL import Image

from calls.facecheck import FAMILY, PRISONER, REASON_UNAPPROVED_FACE, FaceChecker, FaceCheckPool
from calls.models import PauseReason
from tests.calls.facecheck.conftest import (
    Events,
    FakeClock,
    blank_frame,
    canvas,
    encoding_of,
    face_frame,
    video_frame,
)

STEP = 0.5  # two checks a second


def make_checker(
    pool: FaceCheckPool, events: Events, fake: object, /, **kwargs: object
) -> FaceChecker:
    options: dict[str, object] = {
        "approved_encodings": [encoding_of("obama.jpg")],
        "on_pause": events.on_pause,
        "on_resume": events.on_resume,
        "clock": fake,
        "label": "test",
    }
    options.update(kwargs)
    return FaceChecker(pool=pool, **options)  # type: ignore[arg-type]


async def check(checker: FaceChecker, clock: FakeClock, frame: object, side: str = FAMILY):
    checker.offer_frame(side, frame)
    result = await checker.check_once(side)
    clock.advance(STEP)
    return result


OBAMAS = [
    face_frame("obama.jpg"),
    face_frame("obama.jpg", centre=(300, 250)),
    face_frame("obama2.jpg", centre=(340, 230)),
    face_frame("obama3.jpg", centre=(330, 240)),
]
BIDEN = face_frame("biden.jpg")


async def test_an_approved_face_never_pauses_over_a_minute(face_pool, events, clock) -> None:
    checker = make_checker(face_pool, events, clock)
    results = [await check(checker, clock, OBAMAS[(i // 15) % 4]) for i in range(120)]
    assert all(r is not None and len(r.detected) == 1 for r in results)
    assert events.pauses == [] and not checker.is_paused(FAMILY)
    # Tracked faces are not encoded again: a handful of encodings in a minute, not 120.
    encodings = sum(len(r.encoded) for r in results if r)
    assert 1 <= encodings <= 20
    assert checker.stats(FAMILY)["checks"] == 120
    await checker.stop()


async def test_a_stranger_pauses_within_two_checks_and_the_call_resumes_after_the_clear_time(
    face_pool, events, clock
) -> None:
    checker = make_checker(face_pool, events, clock, auto_resume_seconds=10)
    for i in range(6):
        await check(checker, clock, OBAMAS[i % 4])
    assert events.pauses == []

    await check(checker, clock, BIDEN)
    assert events.pauses == []  # one sighting is not enough
    await check(checker, clock, BIDEN)
    assert len(events.pauses) == 1
    side, reason, jpeg, detail = events.pauses[0]
    assert side == FAMILY
    assert reason == REASON_UNAPPROVED_FACE == PauseReason.UNAPPROVED_FACE
    assert detail["decided_by"] == "face_check" and detail["checks"] == 2
    assert detail["resume"] == "auto"
    assert detail["distance"] > detail["tolerance"] == 0.6
    # The evidence is a JPEG of biden's face, not of the whole frame.
    snapshot = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    assert snapshot.shape[1] < 640
    found = face_recognition.face_locations(snapshot, number_of_times_to_upsample=1)
    assert len(found) == 1
    vector = face_recognition.face_encodings(snapshot, known_face_locations=found)[0]
    assert face_recognition.face_distance([encoding_of("biden.jpg")], vector)[0] < 0.6
    assert checker.is_paused(FAMILY)

    # The stranger stays a while longer, then obama is back alone.
    await check(checker, clock, BIDEN)
    last_seen = clock.now - STEP
    clear_at = None
    for i in range(30):
        await check(checker, clock, OBAMAS[i % 4])
        if events.resumes:
            clear_at = clock.now - STEP
            break
    assert clear_at is not None
    assert 10.0 <= clear_at - last_seen <= 10.0 + STEP
    assert events.resumes[0][0] == FAMILY
    assert events.resumes[0][1]["clear_seconds"] >= 10.0
    assert len(events.pauses) == 1
    assert not checker.is_paused(FAMILY)
    await checker.stop()


async def test_staff_only_resume_stays_paused_until_staff_resume(face_pool, events, clock) -> None:
    checker = make_checker(face_pool, events, clock, staff_only_resume=True)
    await check(checker, clock, BIDEN)
    await check(checker, clock, BIDEN)
    assert len(events.pauses) == 1 and events.pauses[0][3]["resume"] == "staff"
    for i in range(60):  # half a minute of only obama
        await check(checker, clock, OBAMAS[(i // 15) % 4])
    assert events.resumes == []
    assert checker.paused_sides == [FAMILY]
    assert checker.staff_resume() == [FAMILY]
    assert checker.paused_sides == []
    assert events.resumes == []  # staff's resume is recorded by the relay, not here
    await checker.stop()


@pytest.mark.parametrize(
    "colour", [(0, 0, 0), (255, 255, 255), (96, 104, 112)], ids=["black", "white", "grey"]
)
async def test_frames_with_no_face_never_pause(face_pool, events, clock, colour) -> None:
    checker = make_checker(face_pool, events, clock, checks_to_confirm=1)
    frame = blank_frame(colour)
    results = [await check(checker, clock, frame) for _ in range(20)]
    assert all(r is not None and r.detected == () for r in results)
    assert events.pauses == []
    await checker.stop()


async def test_a_child_moving_in_and_out_of_frame_never_pauses(face_pool, events, clock) -> None:
    # An approved face that wanders: centre, half out at either edge, gone, back, small.
    path = [
        ("obama.jpg", 130, (320, 240)),
        ("obama.jpg", 130, (470, 230)),
        ("obama.jpg", 130, (600, 240)),
        ("obama.jpg", 130, (630, 240)),  # mostly out of frame
        None,
        None,
        ("obama3.jpg", 130, (30, 260)),  # half in on the other side
        ("obama3.jpg", 130, (120, 250)),
        ("obama2.jpg", 160, (250, 300)),
        ("obama2.jpg", 100, (400, 100)),
        None,
        ("obama.jpg", 130, (320, 470)),  # bottom edge
    ]
    frames = [video_frame(canvas(spot) if spot else canvas()) for spot in path]
    checker = make_checker(face_pool, events, clock, checks_to_confirm=1)
    seen = 0
    for _ in range(3):
        for frame in frames:
            result = await check(checker, clock, frame)
            assert result is not None
            seen += len(result.detected)
    assert seen >= 15  # the face was really there most of the time
    assert events.pauses == []
    await checker.stop()


async def test_the_prisoner_side_is_checked_only_with_an_enrolment(
    face_pool, events, clock
) -> None:
    family_only = make_checker(face_pool, events, clock)
    assert family_only.sides == (FAMILY,)
    family_only.offer_frame(PRISONER, BIDEN)  # ignored, not an error
    assert await family_only.check_once(FAMILY) is None  # nothing offered there
    await family_only.stop()

    checker = make_checker(face_pool, events, clock, prisoner_encoding=encoding_of("biden.jpg"))
    assert set(checker.sides) == {FAMILY, PRISONER}
    for _ in range(4):  # biden is the prisoner: fine on his side
        await check(checker, clock, BIDEN, side=PRISONER)
        await check(checker, clock, OBAMAS[0], side=FAMILY)
    assert events.pauses == []
    await check(checker, clock, OBAMAS[0], side=PRISONER)  # someone else at the terminal
    await check(checker, clock, OBAMAS[0], side=PRISONER)
    assert [p[0] for p in events.pauses] == [PRISONER]
    assert checker.paused_sides == [PRISONER]
    await checker.stop()


class BrokenFrame:
    """A decoder's garbage: claims to be a frame, fails to convert."""

    width = 640
    height = 480

    def to_ndarray(self, **kwargs: object) -> np.ndarray:
        raise av.error.ValueError(22, "corrupt frame")  # type: ignore[call-arg]


class WrongShapeFrame:
    width = 640
    height = 480

    def to_ndarray(self, **kwargs: object) -> np.ndarray:
        return np.zeros((480, 640), np.uint8)


def odd_frames() -> list[object]:
    rng = np.random.default_rng(7)
    frames: list[object] = [
        av.VideoFrame.from_ndarray(
            rng.integers(0, 256, (479, 641, 3), dtype=np.uint8), format="rgb24"
        ),
        av.VideoFrame.from_ndarray(np.zeros((2, 2, 3), np.uint8), format="rgb24"),
        video_frame(np.zeros((1080, 1920, 3), np.uint8)),
        video_frame(np.zeros((1920, 64, 3), np.uint8)),
        blank_frame(),
        av.VideoFrame(320, 240, "yuv420p"),  # uninitialised planes
        av.VideoFrame.from_ndarray(np.zeros((240, 320), np.uint8), format="gray"),
        BrokenFrame(),
        WrongShapeFrame(),
        "not a frame at all",
        None,
    ]
    big = np.asarray(Image.fromarray(canvas(("biden.jpg", 130, (320, 240)))).resize((1920, 1440)))
    frames.append(video_frame(big))
    return frames


async def test_odd_black_and_corrupt_frames_do_not_stop_the_checks(
    face_pool, events, clock, caplog
) -> None:
    checker = make_checker(face_pool, events, clock, checks_to_confirm=1)
    caplog.set_level(logging.WARNING, logger="calls.facecheck")
    outcomes = []
    for frame in odd_frames():
        outcomes.append(await check(checker, clock, frame))
    # None offered is simply "no frame"; the three unusable ones are skipped and logged.
    assert sum(o is None for o in outcomes) == 4
    assert checker.stats(FAMILY)["failures"] == 3
    assert "unusable frame skipped" in caplog.text
    # The large frame (1920 wide) still found biden, downscaled.
    assert outcomes[-1] is not None and outcomes[-1].image_size == (640, 480)
    assert len(events.pauses) == 1
    await checker.stop()


async def test_an_exception_in_the_worker_is_logged_and_the_check_skipped(
    face_pool, events, clock, caplog
) -> None:
    checker = make_checker(face_pool, events, clock, checks_to_confirm=1)
    state = checker._sides[FAMILY]
    good = state.approved
    state.approved = np.zeros((3, 5))  # the worker cannot compare against this
    assert await check(checker, clock, BIDEN) is None
    assert "failed; skipped" in caplog.text
    assert checker.stats(FAMILY)["failures"] == 1
    state.approved = good
    assert await check(checker, clock, BIDEN) is not None
    assert len(events.pauses) == 1
    await checker.stop()


async def test_a_failing_callback_does_not_stop_the_checks(face_pool, clock, caplog) -> None:
    calls = []

    async def on_pause(side, reason, jpeg, detail):
        calls.append(side)
        raise RuntimeError("database gone")

    checker = FaceChecker(
        pool=face_pool,
        approved_encodings=[encoding_of("obama.jpg")],
        checks_to_confirm=1,
        auto_resume_seconds=1,
        on_pause=on_pause,
        clock=clock,
    )
    await check(checker, clock, BIDEN)
    assert calls == [FAMILY] and "on_pause callback failed" in caplog.text
    for _ in range(4):
        assert await check(checker, clock, OBAMAS[0]) is not None
    assert not checker.is_paused(FAMILY)  # resumed although no on_resume was given
    await checker.stop()


def test_bad_settings_and_encodings_are_refused(face_pool) -> None:
    with pytest.raises(ValueError):
        FaceChecker(pool=face_pool, approved_encodings=[np.zeros(12)])
    with pytest.raises(ValueError):
        FaceChecker(pool=face_pool, approved_encodings=[np.full(128, np.nan)])
    with pytest.raises(ValueError):
        FaceChecker(pool=face_pool, approved_encodings=[], checks_per_second=0)
    with pytest.raises(ValueError):
        FaceChecker(pool=face_pool, approved_encodings=[], tolerance=0)
    with pytest.raises(ValueError, match="recent_reference"):
        FaceChecker(pool=face_pool, approved_encodings=[], recent_reference=-1)
    with pytest.raises(ValueError, match="full_every"):
        FaceChecker(pool=face_pool, approved_encodings=[], full_every=0)
    checker = FaceChecker(pool=face_pool, approved_encodings=[])
    with pytest.raises(ValueError):
        checker.offer_frame("visitor", BIDEN)


def _kinds(results: list) -> list[str]:
    return [
        "skip" if r.skipped else "partial" if r.partial else f"full:{r.full_because}"
        for r in results
    ]


@pytest.mark.parametrize(
    ("recent", "after_the_move"),
    [
        # Compared with the picture of 4 checks ago: the moved face is detected on for
        # 4 checks (the move and 3 more), then the still picture is skipped.
        (4, ["partial"] * 4 + ["skip"] * 5),
        # Compared with the last full detection only: detected on until the backstop
        # (every 10 checks).
        (0, ["partial"] * 9),
    ],
)
async def test_a_face_that_moved_and_settled_is_detected_on_for_a_few_checks_then_skipped(
    face_pool, events, clock, recent, after_the_move
) -> None:
    checker = make_checker(face_pool, events, clock, recent_reference=recent)
    there = canvas(("obama.jpg", 100, (260, 240)))
    moved = canvas(("obama.jpg", 100, (330, 230)))
    results = [await check(checker, clock, there)]
    results += [await check(checker, clock, moved) for _ in range(11)]
    assert _kinds(results) == ["full:first", *after_the_move, "full:backstop", "skip"]
    # The face stays tracked, at its new place, through the skipped checks.
    assert all(len(r.detected) == 1 for r in results)
    assert results[-2].tracks[0].box[3] > results[0].tracks[0].box[3] + 40
    assert events.pauses == []
    await checker.stop()


@pytest.mark.django_db
def test_settings_come_from_the_establishment(face_pool) -> None:
    from tests import factories

    establishment = factories.EstablishmentFactory(
        face_match_tolerance=0.45,
        face_checks_to_confirm=3,
        face_checks_per_second=4,
        face_auto_resume_seconds=25,
        face_resume_staff_only=True,
    )
    checker = FaceChecker.for_establishment(
        establishment, pool=face_pool, approved_encodings=[encoding_of("obama.jpg")]
    )
    decision = checker._sides[FAMILY].decision
    assert checker.tolerance == 0.45 and checker.interval == 0.25
    assert (decision.checks_to_confirm, decision.auto_resume_seconds) == (3, 25)
    assert decision.staff_only_resume is True


# --- the real scheduler ------------------------------------------------------------------


class CountingFrame:
    """Wraps a frame and counts conversions (offer_frame must not convert)."""

    def __init__(self, frame: av.VideoFrame, counter: list[int]) -> None:
        self.frame, self.counter = frame, counter
        self.width, self.height = frame.width, frame.height

    def to_ndarray(self, **kwargs: object) -> np.ndarray:
        self.counter.append(1)
        return self.frame.to_ndarray(**kwargs)


async def feed(checker: FaceChecker, frames: list[object], seconds: float, fps: int = 30) -> int:
    sent = 0
    for _ in range(round(seconds * fps)):
        checker.offer_frame(FAMILY, frames[sent % len(frames)])
        sent += 1
        await asyncio.sleep(1 / fps)
    return sent


@pytest.mark.slow
async def test_frames_are_skipped_never_queued(face_pool, events) -> None:
    conversions: list[int] = []
    frames = [CountingFrame(f, conversions) for f in OBAMAS]
    checker = make_checker(face_pool, events, FakeClock(), checks_per_second=2, clock=lambda: 0.0)
    checker.start()
    sent = await feed(checker, frames, seconds=2.0)
    await checker.stop()
    stats = checker.stats(FAMILY)
    # About 2 checks a second whatever the frame rate; every other frame was dropped.
    assert 1 <= stats["checks"] <= 6
    # One conversion per check (plus perhaps the one in flight when stop() came).
    assert stats["checks"] <= len(conversions) <= stats["checks"] + 1
    assert stats["frames_offered"] == sent
    assert stats["frames_skipped"] >= sent - 2 * stats["checks"] - 1
    assert events.pauses == []


@pytest.mark.slow
async def test_the_scheduler_pauses_on_a_stranger_within_two_checks(face_pool, events) -> None:
    checker = make_checker(face_pool, events, FakeClock(), clock=asyncio.get_running_loop().time)
    checker.start()
    await feed(checker, OBAMAS, seconds=1.0)
    loop = asyncio.get_running_loop()
    switched = loop.time()
    feeder = asyncio.create_task(feed(checker, [BIDEN], seconds=10.0))
    await asyncio.wait_for(events.paused.wait(), timeout=20)
    feeder.cancel()
    await checker.stop()
    biden_checks = [t for t in checker.timings if t.at >= switched and not t.error]
    assert len(biden_checks) == 2
    # Encoded once; the confirming check (the next frames) reuses the tracked face chip.
    assert [t.encoded for t in biden_checks] == [1, 0]


@pytest.mark.slow
async def test_a_killed_worker_is_replaced_and_checks_go_on(events, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="calls.facecheck")
    pool = FaceCheckPool(workers=2)
    try:
        await pool.warm()
        checker = make_checker(
            pool, events, FakeClock(), clock=asyncio.get_running_loop().time, checks_per_second=5
        )
        checker.start()
        feeder = asyncio.create_task(feed(checker, [BIDEN, *OBAMAS], seconds=30.0))
        state = checker._sides[FAMILY]
        for _ in range(200):  # kill while a check is in flight
            if state.busy and state.checks >= 2:
                break
            await asyncio.sleep(0.005)
        before = pool.worker_pids()
        assert before
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        killed_at = asyncio.get_running_loop().time()
        for _ in range(400):
            later = [t for t in checker.timings if t.at > killed_at and not t.error]
            if len(later) >= 3:
                break
            await asyncio.sleep(0.05)
        feeder.cancel()
        await checker.stop()
        assert pool.restarts >= 1
        assert "worker process died" in caplog.text
        assert len(later) >= 3  # checks continued on the new pool
        assert not set(pool.worker_pids()) & set(before)
    finally:
        pool.shutdown()


async def test_face_workers_run_one_blas_thread_each(face_pool) -> None:
    # The pool has a worker per core; dlib built with OpenBLAS (deploy/dlib.sh) must
    # not start a BLAS thread per core in each of them as well. (os.getenv runs in the
    # worker: a function of this module could not be unpickled there.)
    import os

    assert await face_pool.run(os.getenv, "OPENBLAS_NUM_THREADS") == "1"
