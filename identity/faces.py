"""The face pipeline: find exactly one face in each photo, encode it, compare.

Runs inside a Celery task (identity.tasks), never in a request of its own.
face_recognition (dlib) is imported lazily so that pages which never match faces do
not pay for loading its models.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from PIL import Image

# Detection runs on a copy whose longest side is at most DETECT_MAX_SIDE. dlib's HOG
# detector finds faces down to about 80 px; a photo smaller than UPSAMPLE_BELOW_SIDE
# (a webcam frame, a phone's reduced upload) is upsampled once so that the small face on
# a photo ID is still found; larger copies are not, which keeps a big photo's cost
# bounded (1024 px unsampled ≈ 700 px upsampled once in pixels scanned).
DETECT_MAX_SIDE = 1024
UPSAMPLE_BELOW_SIDE = 700


class FaceStatus:
    ONE = "one"
    NONE = "no_face"
    SEVERAL = "several_faces"


@dataclass
class FaceFound:
    status: str
    encoding: np.ndarray | None = None
    count: int = 0


@dataclass
class Timings:
    decode: float = 0.0
    detect: float = 0.0
    encode: float = 0.0

    def add(self, other: Timings) -> None:
        self.decode += other.decode
        self.detect += other.detect
        self.encode += other.encode


@dataclass
class MatchOutcome:
    result: str  # a FaceResult value
    distance: float | None
    selfie_encoding: np.ndarray | None
    timings: Timings = field(default_factory=Timings)
    # The face on the photo ID, when one was found.
    id_encoding: np.ndarray | None = None
    # Which photo the result is about when no comparison was possible: "selfie" or "id".
    problem_with: str = ""


def decode_rgb(source: IO[bytes]) -> np.ndarray:
    """Decode a stored (already checked, re-encoded) JPEG into an RGB array."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        return np.asarray(image)


def downscaled(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """A copy for detection and the upsample count that suits its size."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / longest
        image = Image.fromarray(pixels).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))),
            Image.Resampling.BILINEAR,
        )
        pixels = np.asarray(image)
        longest = DETECT_MAX_SIDE
    upsample = 1 if longest < UPSAMPLE_BELOW_SIDE else 0
    return np.ascontiguousarray(pixels), upsample


def find_one_face(
    source: IO[bytes], timings: Timings | None = None, *, largest: bool = False
) -> FaceFound:
    """Exactly one face, or with ``largest`` the biggest one.

    ``largest`` is for photo IDs: passports print a second, smaller "ghost" portrait.
    """
    import face_recognition

    timings = timings if timings is not None else Timings()
    started = time.perf_counter()
    pixels, upsample = downscaled(decode_rgb(source))
    decoded = time.perf_counter()
    locations = face_recognition.face_locations(
        pixels, number_of_times_to_upsample=upsample, model="hog"
    )
    detected = time.perf_counter()
    timings.decode += decoded - started
    timings.detect += detected - decoded
    if not locations:
        return FaceFound(status=FaceStatus.NONE)
    count = len(locations)
    if count > 1 and not largest:
        return FaceFound(status=FaceStatus.SEVERAL, count=count)
    if count > 1:
        # (top, right, bottom, left): keep the face with the largest area.
        locations = [max(locations, key=lambda box: (box[2] - box[0]) * (box[1] - box[3]))]
    encodings = face_recognition.face_encodings(pixels, known_face_locations=locations)
    timings.encode += time.perf_counter() - detected
    return FaceFound(status=FaceStatus.ONE, encoding=encodings[0], count=count)


def face_distance(known: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.linalg.norm(known - candidate))


def match_id_and_selfie(
    id_source: IO[bytes], selfie_source: IO[bytes], *, tolerance: float
) -> MatchOutcome:
    """Compare the face on a photo ID with the face on a selfie."""
    timings = Timings()
    selfie = find_one_face(selfie_source, timings)
    if selfie.status != FaceStatus.ONE:
        return MatchOutcome(
            result=selfie.status,
            distance=None,
            selfie_encoding=None,
            timings=timings,
            problem_with="selfie",
        )
    id_face = find_one_face(id_source, timings, largest=True)
    if id_face.status != FaceStatus.ONE:
        return MatchOutcome(
            result=id_face.status,
            distance=None,
            selfie_encoding=selfie.encoding,
            timings=timings,
            problem_with="id",
        )
    assert id_face.encoding is not None and selfie.encoding is not None  # noqa: S101
    distance = face_distance(id_face.encoding, selfie.encoding)
    result = "match" if distance <= tolerance else "no_match"
    return MatchOutcome(
        result=result,
        distance=distance,
        selfie_encoding=selfie.encoding,
        timings=timings,
        id_encoding=id_face.encoding,
    )


def precall_encoding(
    frames: Iterable[IO[bytes]],
    selfie_encoding: np.ndarray,
    *,
    tolerance: float,
    min_frames: int,
) -> tuple[np.ndarray | None, str]:
    """The mean encoding of a visitor's pre-call frames, or (None, why not).

    Kept only if every frame shows exactly one face within ``tolerance`` of the
    visitor's selfie (so a stranger at the camera check cannot enrol), and at least
    ``min_frames`` frames did. Every frame is then within the tolerance of the selfie,
    so their mean is too.
    """
    encodings = []
    for source in frames:
        found = find_one_face(source)
        if found.status != FaceStatus.ONE or found.encoding is None:
            return None, found.status
        if face_distance(selfie_encoding, found.encoding) > tolerance:
            return None, "a face that is not the selfie's"
        encodings.append(found.encoding)
    if len(encodings) < min_frames:
        return None, "too few frames"
    return np.mean(np.stack(encodings), axis=0), ""
