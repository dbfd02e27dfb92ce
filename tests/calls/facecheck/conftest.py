"""Real faces on synthetic video frames, and a face-check pool shared by these tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from calls.facecheck import FaceCheckPool
from calls.facecheck.analysis import CheckJob, CheckResult, analyse

FACES = Path(__file__).resolve().parents[2] / "fixtures" / "faces"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: face-check tests that take several seconds")


@cache
def face_image(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


@cache
def encoding_of(name: str) -> np.ndarray:
    import face_recognition

    image = np.asarray(face_image(name))
    boxes = face_recognition.face_locations(image, number_of_times_to_upsample=0)
    assert len(boxes) == 1, name
    return face_recognition.face_encodings(image, known_face_locations=boxes)[0]


@cache
def face_box(name: str) -> tuple[int, int, int, int]:
    import face_recognition

    boxes = face_recognition.face_locations(
        np.asarray(face_image(name)), number_of_times_to_upsample=0
    )
    assert len(boxes) == 1, name
    return boxes[0]


def canvas(
    *faces: tuple[str, int, tuple[int, int]],
    size: tuple[int, int] = (640, 480),
    background: tuple[int, int, int] = (96, 104, 112),
) -> np.ndarray:
    """An RGB frame with each (image, face width px, face centre (x, y)) pasted on it.

    The face is pasted with its head and shoulders around it (the image cropped to
    1.6 face-widths around the face), scaled so the detected face is about that wide.
    """
    frame = Image.new("RGB", size, background)
    for name, face_width, (cx, cy) in faces:
        image = face_image(name)
        top, right, bottom, left = face_box(name)
        width = right - left
        fx, fy = (left + right) / 2, (top + bottom) / 2
        pad = 1.6 * width
        region = (
            max(0, round(fx - pad)),
            max(0, round(fy - pad)),
            min(image.width, round(fx + pad)),
            min(image.height, round(fy + pad)),
        )
        scale = face_width / width
        crop = image.crop(region)
        crop = crop.resize(
            (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
            Image.Resampling.BILINEAR,
        )
        frame.paste(
            crop, (round(cx - (fx - region[0]) * scale), round(cy - (fy - region[1]) * scale))
        )
    return np.asarray(frame)


def video_frame(rgb: np.ndarray) -> av.VideoFrame:
    """The frame as aiortc's decoder hands it over: yuv420p."""
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


# A face 130 px wide in a 640 px frame: someone about 70 cm from a laptop camera.
FACE_WIDTH = 130


def face_frame(
    name: str, centre: tuple[int, int] = (320, 240), width: int = FACE_WIDTH
) -> av.VideoFrame:
    return video_frame(canvas((name, width, centre)))


def next_check(
    image: np.ndarray, previous: CheckResult | None, approved: np.ndarray, **options: object
) -> CheckResult:
    """``analyse`` the next check of a stream, carrying over from ``previous`` what the
    checker carries (tracks, thumbnail, checks since the last full detection, edge
    scans put off); the first check with ``previous=None``."""
    carried: dict[str, object] = {}
    if previous is not None:
        carried = {
            "tracks": previous.tracks,
            "next_track_id": previous.next_track_id,
            "previous_thumb": previous.thumb,
            "since_full": previous.since_full,
            "mirror_pending": previous.mirror_pending,
        }
    job = CheckJob(**{"image": image, "tracks": (), "approved": approved, **carried, **options})  # type: ignore[arg-type]
    return analyse(job)


def three_faces() -> np.ndarray:
    return canvas(
        ("obama.jpg", 120, (110, 200)),
        ("biden.jpg", 120, (320, 260)),
        ("obama3.jpg", 120, (530, 220)),
    )


def blank_frame(colour: tuple[int, int, int] = (0, 0, 0)) -> av.VideoFrame:
    return video_frame(canvas(background=colour))


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def face_pool() -> Iterator[FaceCheckPool]:
    pool = FaceCheckPool(workers=2)
    asyncio.run(pool.warm())
    yield pool
    pool.shutdown()


@pytest.fixture
def obama() -> np.ndarray:
    return encoding_of("obama.jpg")


@pytest.fixture
def biden() -> np.ndarray:
    return encoding_of("biden.jpg")


Recorder = Callable[..., object]


class Events:
    """Collects the checker's callbacks."""

    def __init__(self) -> None:
        self.pauses: list[tuple[str, str, bytes, dict[str, object]]] = []
        self.resumes: list[tuple[str, dict[str, object]]] = []
        self.paused = asyncio.Event()

    async def on_pause(
        self, side: str, reason: str, jpeg: bytes, detail: dict[str, object]
    ) -> None:
        self.pauses.append((side, reason, jpeg, detail))
        self.paused.set()

    async def on_resume(self, side: str, detail: dict[str, object]) -> None:
        self.resumes.append((side, detail))


@pytest.fixture
def events() -> Events:
    return Events()
