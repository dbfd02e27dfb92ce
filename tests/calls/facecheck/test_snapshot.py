from __future__ import annotations

import io

import numpy as np
from PIL import Image

from calls.facecheck.snapshot import snapshot_jpeg
from tests.calls.facecheck.conftest import canvas


def decode(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return image


def test_the_snapshot_is_the_face_with_a_margin() -> None:
    frame = canvas(("biden.jpg", 130, (320, 240)))
    jpeg = snapshot_jpeg(frame, (180, 385, 300, 255), margin=0.5)
    image = decode(jpeg)
    assert image.size == (130 + 2 * 65, 120 + 2 * 60)


def test_a_box_at_the_edge_is_clipped_to_the_frame() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    assert decode(snapshot_jpeg(frame, (400, 640, 480, 560))).size == (128, 128)
    assert decode(snapshot_jpeg(frame, (-50, 50, 50, -50))).size == (110, 110)


def test_a_box_outside_the_frame_gives_the_whole_frame() -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    assert decode(snapshot_jpeg(frame, (500, 900, 600, 800))).size == (64, 48)
