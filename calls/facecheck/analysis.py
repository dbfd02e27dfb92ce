"""The face analysis that runs in the worker processes: pure, synchronous, picklable in/out.

Nothing here touches Django, the database or the event loop. The relay process sends a
:class:`CheckJob` (an RGB frame already capped at ``TRANSPORT_WIDTH`` plus the tracks of
the previous check) and gets back a :class:`CheckResult`.

One check:

0. if the picture has not changed since the last full detection (8 x 8 pixel block
   means of the grey image, none moved by more than ``unchanged_max``), every face in
   it was approved and fewer than ``full_every`` checks were skipped in a row, the
   previous tracks stand and nothing else runs (≈ 1 ms);
1. scale the frame to ``detect_width`` (down, or up for a small phone stream, so a
   40 px face in a 320 px stream is found) and run dlib's HOG detector with
   ``upsample 0`` (face_recognition's default upsample 1 is 4-5x slower);
2. associate each detection with a track of the previous check (greedy IoU);
3. encode only the faces that need it — new tracks, tracks still ``unknown``, and
   approved tracks due for re-verification — on the full transport resolution (a
   better face chip than the detection image gives). A tracked face (approved or
   unapproved) is encoded again only when its aligned face chip (5 landmarks, 0.6 ms)
   no longer looks like the chip of its last encoding, so a person replaced by
   another in the same spot between two checks is caught at once, while an
   unapproved face is confirmed by the next check without a second encoding;
4. compare with the approved encodings, nearest first: ``distance ≤ tolerance`` →
   approved; within ``unknown_band`` above the tolerance → ``unknown`` (reason
   ``band``: encoded again next check); further → unapproved.

A new detection is not encoded (status ``unknown``) when it is weak (reason ``weak``)
or cut by the edge of the frame (reason ``edge``): those encodings are unreliable.
A track that was approved keeps that status while it is cut by the edge (the family
member leaning out of shot); one that was unapproved keeps that. The decision
(:mod:`calls.facecheck.decision`) treats an ``edge`` face that stays unknown for
longer than ``linger_seconds`` as unapproved. A track that was approved and drifts
into the band stays approved.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

# Face boxes are (top, right, bottom, left) in transport-image pixels, face_recognition's order.
Box = tuple[int, int, int, int]

APPROVED = "approved"
UNAPPROVED = "unapproved"
UNKNOWN = "unknown"

# Why a face is unknown.
WEAK = "weak"  # a weak detection (may not be a face at all): never counts against anyone
EDGE = "edge"  # cut by the frame's edge: counts as unapproved if it lingers
BAND = "band"  # encoded, just above the tolerance: encoded again, never counts

# Frames wider than this are downscaled in the relay before they are sent to a worker.
TRANSPORT_WIDTH = 640


@dataclass(frozen=True)
class Track:
    """A face followed from check to check."""

    id: int
    box: Box
    status: str = UNKNOWN
    # Checks since this track was last encoded (approved tracks are re-verified now and then).
    since_encode: int = 0
    # Consecutive checks in which the track was not detected (kept a little, then dropped).
    missed: int = 0
    # Smallest distance to an approved encoding at the last encoding (None: never encoded).
    distance: float | None = None
    # Small aligned grey face chip from the last encoding: if the face in the track stops
    # looking like it (another person sat down in the same spot), it is encoded again.
    chip: np.ndarray | None = field(default=None, compare=False, repr=False)
    # For an unknown track: WEAK, EDGE or BAND.
    reason: str = ""
    # The track has been approved at some encoding (a drift into the band keeps it so).
    approved_before: bool = False


@dataclass(frozen=True)
class CheckJob:
    image: np.ndarray  # H x W x 3, uint8, RGB
    tracks: tuple[Track, ...]
    approved: np.ndarray  # N x 128 float64 (N may be 0: then every face is unapproved)
    tolerance: float = 0.6
    detect_width: int = 800
    next_track_id: int = 1
    # Re-encode an approved track after this many checks, as a backstop to the chip
    # comparison below; at most one such re-verification per check, so its cost is
    # spread out instead of hitting every tracked face at the same check.
    reverify_every: int = 30
    # Detections scoring below this (dlib HOG margin) are too weak to encode.
    min_score: float = 0.25
    # Detections with more than this fraction of the box outside the frame are not encoded.
    max_outside: float = 0.15
    # Tracks survive this many checks without a detection (detector drop-outs).
    keep_missed: int = 2
    iou_threshold: float = 0.3
    # Correlation of aligned face chips below which a tracked face counts as changed.
    # Measured: the same face moved or rescaled ≥ 0.98; another photo of the same
    # person ~0.5; other people 0.25-0.75.
    same_face_min: float = 0.85
    # Above the tolerance by less than this: unknown (encoded again), not unapproved.
    unknown_band: float = 0.04
    # An unapproved track nearer than tolerance + this is encoded again at each check
    # (a second opinion); further ones are confirmed from their face chip alone.
    near_margin: float = 0.1
    # Skip detection while the picture is unchanged (see the module docstring).
    previous_thumb: np.ndarray | None = field(default=None, compare=False, repr=False)
    since_full: int = 0
    full_every: int = 4
    unchanged_max: float = 6.0


@dataclass(frozen=True)
class CheckResult:
    tracks: tuple[Track, ...]
    next_track_id: int
    # Track ids detected in this check, and those encoded in it.
    detected: tuple[int, ...]
    encoded: tuple[int, ...]
    encodings: dict[int, np.ndarray] = field(default_factory=dict)
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the transport image
    detect_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0
    cpu_ms: float = 0.0  # CPU time of the worker process for this check
    worker_pid: int = 0
    # Detection skipped: the picture had not changed and every face in it was approved.
    skipped: bool = False
    thumb: np.ndarray | None = field(default=None, compare=False, repr=False)
    since_full: int = 0

    def seen(self, status: str) -> list[Track]:
        """Tracks detected in this check with ``status``."""
        ids = set(self.detected)
        return [t for t in self.tracks if t.id in ids and t.status == status]


def check_image(image: object) -> np.ndarray:
    """The image as an H x W x 3 uint8 array, or ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("empty image")
    return np.ascontiguousarray(image)


def _downscale(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """(image scaled to ``width`` wide, factor transport/detect).

    Frames narrower than ``width`` (a 320x240 phone stream) are scaled up: HOG finds
    faces from ~80 px in the image it scans, so this is what finds a 40-60 px face in
    a small stream, at the cost of a ``width``-wide frame.
    """
    height, current = image.shape[:2]
    if current == width:
        return image, 1.0
    from PIL import Image

    new_height = max(1, round(height * width / current))
    resized = Image.fromarray(image).resize((width, new_height), Image.Resampling.BILINEAR)
    return np.asarray(resized), current / width


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey means of 8 x 8 pixel blocks (float32): what "the picture changed" compares."""
    from PIL import Image

    height, width = image.shape[:2]
    grey = Image.fromarray(image).convert("L")
    small = grey.resize((max(1, width // 8), max(1, height // 8)), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def unchanged(a: np.ndarray | None, b: np.ndarray, limit: float) -> bool:
    return a is not None and a.shape == b.shape and float(np.max(np.abs(a - b))) <= limit


def iou(a: Box, b: Box) -> float:
    top = max(a[0], b[0])
    right = min(a[1], b[1])
    bottom = min(a[2], b[2])
    left = max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    area_a = max(0, a[1] - a[3]) * max(0, a[2] - a[0])
    area_b = max(0, b[1] - b[3]) * max(0, b[2] - b[0])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def associate(previous: tuple[Track, ...], boxes: list[Box], threshold: float) -> dict[int, Track]:
    """Detection index → previous track it continues (greedy, best IoU first)."""
    pairs = sorted(
        (
            (iou(track.box, box), index, track)
            for index, box in enumerate(boxes)
            for track in previous
        ),
        key=lambda pair: -pair[0],
    )
    matched: dict[int, Track] = {}
    used: set[int] = set()
    for overlap, index, track in pairs:
        if overlap < threshold:
            break
        if index in matched or track.id in used:
            continue
        matched[index] = track
        used.add(track.id)
    return matched


def _detect(
    small: np.ndarray, scale: float, size: tuple[int, int], *, min_score: float, max_outside: float
) -> list[tuple[Box, bool, str]]:
    """[(box in transport pixels, good enough to encode, why not)] for each face found."""
    from face_recognition.api import face_detector

    width, height = size
    rects, scores, _kinds = face_detector.run(small, 0, 0.0)
    found: list[tuple[Box, bool, str]] = []
    for rect, score in zip(rects, scores, strict=True):
        raw = (
            round(rect.top() * scale),
            round(rect.right() * scale),
            round(rect.bottom() * scale),
            round(rect.left() * scale),
        )
        box = (max(raw[0], 0), min(raw[1], width), min(raw[2], height), max(raw[3], 0))
        raw_area = max(1, (raw[1] - raw[3]) * (raw[2] - raw[0]))
        inside = max(0, box[1] - box[3]) * max(0, box[2] - box[0])
        if inside == 0:
            continue
        outside = 1 - inside / raw_area
        # Cut by the edge first: a partial face scores low, and is still someone there.
        why = EDGE if outside > max_outside else WEAK if score < min_score else ""
        found.append((box, not why, why))
    return found


def face_chip(image: np.ndarray, box: Box) -> np.ndarray:
    """A 16 x 16 aligned, normalised grey chip of the face (cheap appearance signature)."""
    import dlib
    from face_recognition.api import pose_predictor_5_point

    top, right, bottom, left = box
    shape = pose_predictor_5_point(image, dlib.rectangle(left, top, right, bottom))
    chip = np.asarray(dlib.get_face_chip(image, shape, size=32, padding=0.0), np.float32)
    grey = chip.mean(axis=2).reshape(16, 2, 16, 2).mean(axis=(1, 3))
    grey -= grey.mean()
    return grey / max(float(grey.std()), 1e-3)


def same_face(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Correlation of two chips (-1…1); 0 when either is missing."""
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float(np.mean(a * b))


def analyse(job: CheckJob) -> CheckResult:
    """Run one face check. Raises ValueError on a bad image; anything else is a bug."""
    import face_recognition

    started = time.perf_counter()
    cpu_started = time.process_time()
    image = check_image(job.image)
    height, width = image.shape[:2]
    thumb = thumbnail(image)
    visible = [t for t in job.tracks if t.missed == 0]
    if (
        job.since_full + 1 < job.full_every
        and all(t.status == APPROVED for t in job.tracks)
        and unchanged(job.previous_thumb, thumb, job.unchanged_max)
    ):
        done = time.perf_counter()
        return CheckResult(
            tracks=tuple(job.tracks),
            next_track_id=job.next_track_id,
            detected=tuple(t.id for t in visible),
            encoded=(),
            image_size=(width, height),
            total_ms=(done - started) * 1000,
            cpu_ms=(time.process_time() - cpu_started) * 1000,
            worker_pid=os.getpid(),
            skipped=True,
            thumb=job.previous_thumb,
            since_full=job.since_full + 1,
        )
    small, scale = _downscale(image, max(16, job.detect_width))
    detections = _detect(
        small, scale, (width, height), min_score=job.min_score, max_outside=job.max_outside
    )
    detected_at = time.perf_counter()

    boxes = [box for box, _good, _why in detections]
    matched = associate(job.tracks, boxes, job.iou_threshold)
    next_id = job.next_track_id
    current: list[Track] = []
    to_encode: list[int] = []  # indexes into current
    chips: dict[int, np.ndarray] = {}  # index into current → chip of a face to encode
    # The one approved track due for re-verification in this check (the most overdue).
    due = [
        track
        for track in matched.values()
        if track.status == APPROVED and track.since_encode + 1 >= job.reverify_every
    ]
    reverify = max(due, key=lambda t: t.since_encode).id if due else None
    for index, (box, good, why) in enumerate(detections):
        previous = matched.get(index)
        chip = face_chip(image, box) if good else None
        if previous is None:
            track = Track(id=next_id, box=box, status=UNKNOWN, since_encode=0)
            next_id += 1
            needs = True
        else:
            track = Track(
                id=previous.id,
                box=box,
                status=previous.status,
                since_encode=previous.since_encode + 1,
                distance=previous.distance,
                chip=previous.chip,
                reason=previous.reason,
                approved_before=previous.approved_before,
            )
            if previous.status in (APPROVED, UNAPPROVED):
                # Known either way: encoded again only if the face looks different
                # (or, approved, for the periodic re-verification). A known track cut
                # by the edge keeps its status: its chip cannot be compared.
                needs = good and (
                    track.id == reverify
                    or same_face(chip, previous.chip) < job.same_face_min
                    # Unapproved but near the tolerance: a second opinion before a pause.
                    or (
                        previous.status == UNAPPROVED
                        and (previous.distance or 0.0) < job.tolerance + job.near_margin
                    )
                )
            else:
                needs = True
        if needs and good and chip is not None:
            chips[len(current)] = chip
            to_encode.append(len(current))
        elif needs:
            # A weak or cut-off new face says nothing either way: unknown, with why.
            track = Track(
                id=track.id,
                box=box,
                status=UNKNOWN,
                since_encode=track.since_encode,
                distance=track.distance,
                reason=why or track.reason,
                approved_before=track.approved_before,
            )
        current.append(track)

    encodings: dict[int, np.ndarray] = {}
    if to_encode:
        vectors = face_recognition.face_encodings(
            image, known_face_locations=[current[i].box for i in to_encode], num_jitters=1
        )
        approved = np.asarray(job.approved, dtype=np.float64).reshape(-1, 128)
        for i, vector in zip(to_encode, vectors, strict=True):
            track = current[i]
            if len(approved):
                # The nearest of every enrolment (several per person are fine).
                distance = float(np.min(face_recognition.face_distance(approved, vector)))
            else:
                distance = float("inf")
            band = distance < job.tolerance + job.unknown_band
            if distance <= job.tolerance or (band and track.approved_before):
                status, reason = APPROVED, ""
            elif band:
                status, reason = UNKNOWN, BAND
            else:
                status, reason = UNAPPROVED, ""
            current[i] = Track(
                id=track.id,
                box=track.box,
                status=status,
                since_encode=0,
                distance=distance,
                chip=chips[i],
                reason=reason,
                approved_before=track.approved_before or status == APPROVED,
            )
            encodings[track.id] = vector
    encoded_at = time.perf_counter()

    # Keep tracks that were not detected this time for a couple of checks.
    continued = {track.id for track in matched.values()}
    for track in job.tracks:
        if track.id not in continued and track.missed < job.keep_missed:
            current.append(
                Track(
                    id=track.id,
                    box=track.box,
                    status=track.status,
                    since_encode=track.since_encode + 1,
                    missed=track.missed + 1,
                    distance=track.distance,
                    chip=track.chip,
                    reason=track.reason,
                    approved_before=track.approved_before,
                )
            )
    detected_ids = tuple(t.id for t in current[: len(detections)])
    return CheckResult(
        tracks=tuple(current),
        next_track_id=next_id,
        detected=detected_ids,
        encoded=tuple(current[i].id for i in to_encode),
        encodings=encodings,
        image_size=(width, height),
        detect_ms=(detected_at - started) * 1000,
        encode_ms=(encoded_at - detected_at) * 1000,
        total_ms=(encoded_at - started) * 1000,
        cpu_ms=(time.process_time() - cpu_started) * 1000,
        worker_pid=os.getpid(),
        thumb=thumb,
        since_full=0,
    )


def warm_up() -> None:
    """Load dlib's models in a fresh worker so the first real check is not slow."""
    import face_recognition

    blank = np.zeros((120, 160, 3), dtype=np.uint8)
    face_recognition.face_encodings(blank, known_face_locations=[(10, 110, 110, 10)])
    analyse(CheckJob(image=blank, tracks=(), approved=np.zeros((0, 128))))


def _exit_with(owner_pid: int) -> None:
    """Leave when the process that owns the pool has gone (killed without shutting the
    pool down): an orphaned worker would otherwise wait for work forever."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(2.0)
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except OSError:
                pass  # alive, but not ours to signal

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def worker_initializer(owner_pid: int = 0) -> None:
    """Pool initializer: be nicer than the media loop, then load the models."""
    if owner_pid:
        _exit_with(owner_pid)
    # The relay's event loop (decode, forward, re-encode) must win the CPU.
    with contextlib.suppress(OSError):
        os.nice(5)
    # Ctrl-C in a terminal reaches the whole process group: the relay shuts the pool
    # down itself, so a worker must not die mid-check with a traceback.
    import signal

    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
