"""The face analysis that runs in the worker processes: pure, synchronous, picklable in/out.

Nothing here touches Django, the database or the event loop. The relay process sends a
:class:`CheckJob` (an RGB frame already capped at ``TRANSPORT_WIDTH`` plus the tracks of
the previous check) and gets back a :class:`CheckResult`.

One check:

0. if the picture has not changed since the reference, ``previous_thumb`` (the
   checker's choice: the picture of 4 checks ago, or of the last full detection when
   that is more recent, see ``FaceChecker.recent_reference``) (8 x 8 pixel block
   means of the grey image, no 2 x 2 square of them moved by more than
   ``unchanged_max``: single blocks moved by camera noise or compression do not count,
   see :func:`changed_blocks`), every face in it was approved and fewer than
   ``full_every`` checks passed since the last full detection (10: one every 5 s at
   2 checks a second), the previous tracks stand and nothing else runs (≈ 1 ms);
1. scale the frame to ``detect_width`` (down, or up for a small phone stream, so a
   40 px face in a 320 px stream is found) and run dlib's HOG detector with
   ``upsample 0`` (face_recognition's default upsample 1 is 4-5x slower). While every
   face is approved and fewer than ``full_every`` checks have passed since the last
   full detection, only the parts of the picture that changed since the reference (and the
   tracked faces they touch) are scaled and scanned (:func:`changed_regions`); the
   tracks elsewhere stand. A change over most of the frame, or a face found against a
   side of a crop, gets a full detection;
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
   ``band``: encoded again next check); further → unapproved, except that a new
   unapproved face from a weak HOG detection (score below ``verify_below``) is first
   shown to dlib's CNN detector on a small crop: not a face there → ``unknown``
   (reason ``not_face``: never counts; encoded again only when its chip changes or
   for the periodic re-verification). HOG false positives (the corner of a picture
   against a patterned wall) encode 0.76-0.79 from everyone, like strangers.

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
from dataclasses import dataclass, field, replace

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
# A detection that encoded as someone else but that a second detector (dlib's CNN, on a
# small crop) does not see as a face: a poster, a picture frame's corner, a pattern.
# Never counts; checked again when it changes or every ``reverify_every`` checks.
NOT_FACE = "not_face"

# Why a check detects on the whole frame (CheckResult.full_because).
FULL_FIRST = "first"  # nothing to compare with (the first check, a new frame size)
FULL_FACES = "faces"  # a face in the picture is not (yet) approved
FULL_BACKSTOP = "backstop"  # ``full_every`` checks since the last full detection
FULL_WIDE = "wide"  # the change covers most of the frame (light, camera moved)
FULL_CUT = "cut"  # a face found against a side of a changed region's crop
FULL_OFF = "off"  # partial detection switched off

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
    # HOG score of the detection that started the track (or of its last encoding).
    score: float = 0.0
    # Found on the mirrored edge strip (a face about half out of the picture): encoded
    # once from its mirror image (see :func:`_detect_mirrored`), or an approved face
    # that only the mirror still sees.
    mirrored: bool = False
    # How far the box's centre moved across the picture (px, + to the right) between
    # the track's last two detections: someone leaving by an edge moves towards it.
    moved: int = 0


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
    # An approved face last seen cut by the picture's edge survives this many: someone
    # leaning out until most of the face is gone is found by neither HOG nor the
    # mirrored strip for a second or more (measured: 3 checks at 65 % out), and the
    # half face the mirror then finds must continue their track, not start a new one
    # that lingers into a pause. About ``linger_seconds`` at 2 checks a second.
    keep_missed_edge: int = 6
    iou_threshold: float = 0.3
    # Correlation of aligned face chips below which a tracked face counts as changed.
    # Measured: the same face moved or rescaled ≥ 0.98; another photo of the same
    # person ~0.5; other people 0.25-0.75.
    same_face_min: float = 0.85
    # Above the tolerance by less than this: unknown (encoded again), not unapproved.
    # Measured on the evaluation's four held-out sets: approved people in small,
    # blurred or phone-sized pictures reach 0.640-0.665 from their enrolment for a few
    # checks in a row (0.04 paused calls on 7 of them in 40 call-hours); strangers'
    # nearest 0.79 (0.68 with a pre-call encoding as well).
    unknown_band: float = 0.07
    # An unapproved track nearer than tolerance + this is encoded again at each check
    # (a second opinion); further ones are confirmed from their face chip alone.
    near_margin: float = 0.1
    # Skip detection while the picture is unchanged since this reference (see the module
    # docstring).
    previous_thumb: np.ndarray | None = field(default=None, compare=False, repr=False)
    since_full: int = 0
    full_every: int = 10
    unchanged_max: float = 6.0
    # Detect only where the picture changed (and around the tracks there) while every
    # face is approved; a full detection at least every ``full_every`` checks.
    partial: bool = True
    # Regions covering more than this share of the frame: a full detection instead.
    partial_max_share: float = 0.75
    # A detection that encodes as unapproved with a HOG score below this gets a second
    # opinion from dlib's CNN detector on a crop (≈ 70-110 ms, once per track): HOG
    # false positives (measured 0.05-0.31) encode as strangers 0.76-0.79 away. Real
    # strangers on the evaluation scored 0.43-1.9; the CNN found every one of them.
    verify_below: float = 0.8
    # Faces about half out of the picture at the left or right edge, which HOG cannot
    # see, are looked for on a strip of that edge joined to its mirror image (a face
    # is nearly symmetric: its visible half and the mirror make a whole face). The
    # strip is this share of the frame's width, scanned at ``mirror_detect_width``
    # scale; only where the strip changed since the last full detection or a track
    # touches that edge. A mirrored face is encoded once from the mirror image:
    # nearer than tolerance - ``mirror_margin`` to an approved encoding → approved
    # (measured: people's own mirrored half faces 0.29-0.65 from their enrolment,
    # others' 0.63 and further); otherwise it stays unknown (``edge``) and lingers.
    mirror_edges: bool = True
    mirror_share: float = 0.18
    mirror_detect_width: int = 640
    mirror_margin: float = 0.05
    # Edge scans put off by the last check, which encoded a new face (see
    # :func:`analyse`): (side, top row, bottom row), scanned in this one.
    mirror_pending: tuple[tuple[str, int, int], ...] = ()


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
    # The reference to compare the next check with when only one is kept: this check's
    # thumbnail after a full detection, the job's reference otherwise.
    thumb: np.ndarray | None = field(default=None, compare=False, repr=False)
    # This check's own thumbnail (the checker keeps the last few: see
    # FaceChecker.recent_reference).
    current_thumb: np.ndarray | None = field(default=None, compare=False, repr=False)
    since_full: int = 0
    # Detection ran only on the regions that changed (``regions`` of them).
    partial: bool = False
    regions: int = 0
    # Detections checked by the CNN detector in this check.
    verified: int = 0
    # Edge strips scanned for mirrored faces, and faces found there.
    mirror_sides: int = 0
    mirrored: int = 0
    # Edge scans put off to the next check (this one encoded a new face).
    mirror_pending: tuple[tuple[str, int, int], ...] = ()
    # Why this check ran a full detection ("" when it did not): see FULL_BECAUSE.
    full_because: str = ""

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


def changed_blocks(a: np.ndarray, b: np.ndarray, limit: float) -> np.ndarray:
    """The thumbnail blocks that changed by more than ``limit`` between ``a`` and ``b``,
    counted only where they make up a changed square of 2 x 2 blocks (16 x 16 px).

    Camera noise and compression move single blocks here and there (measured: 2-3 % of
    the blocks of a heavily compressed still picture, scattered over the whole frame,
    which made nearly every check a full detection); a face, even 60 px wide, is a
    patch of 7 x 7 changed blocks. A thin line of change (an edge moving by a pixel or
    two) is left out too: the comparison is with the last full detection's picture, so
    a slow change adds up until it counts."""
    changed = np.abs(b - a) > limit
    if not changed.any():
        return changed
    square = changed[:-1, :-1] & changed[1:, :-1] & changed[:-1, 1:] & changed[1:, 1:]
    kept = np.zeros_like(changed)
    for dr in (0, 1):
        for dc in (0, 1):
            kept[dr : dr + square.shape[0], dc : dc + square.shape[1]] |= square
    return kept


def unchanged(a: np.ndarray | None, b: np.ndarray, limit: float) -> bool:
    return a is not None and a.shape == b.shape and not changed_blocks(a, b, limit).any()


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


Detection = tuple[Box, bool, str, float]  # (box, good enough to encode, why not, HOG score)


def _detect(
    small: np.ndarray,
    scale: float,
    size: tuple[int, int],
    *,
    min_score: float,
    max_outside: float,
    region: Box | None = None,
) -> list[Detection] | None:
    """[(box in transport pixels, good enough to encode, why not, score)] for each face
    found in ``small`` (the frame, or the crop ``region`` of it, scaled by 1 / ``scale``).

    None when a face found in a crop touches a side of the crop that is not the
    frame's edge: the crop may have cut it, the caller detects on the whole frame.
    """
    from face_recognition.api import face_detector

    width, height = size
    top0, left0 = (region[0], region[3]) if region else (0, 0)
    rects, scores, _kinds = face_detector.run(small, 0, 0.0)
    found: list[Detection] = []
    for rect, score in zip(rects, scores, strict=True):
        raw = (
            top0 + round(rect.top() * scale),
            left0 + round(rect.right() * scale),
            top0 + round(rect.bottom() * scale),
            left0 + round(rect.left() * scale),
        )
        if region is not None and (
            (raw[0] <= region[0] + 1 and region[0] > 0)
            or (raw[1] >= region[1] - 1 and region[1] < width)
            or (raw[2] >= region[2] - 1 and region[2] < height)
            or (raw[3] <= region[3] + 1 and region[3] > 0)
        ):
            return None
        box = (max(raw[0], 0), min(raw[1], width), min(raw[2], height), max(raw[3], 0))
        raw_area = max(1, (raw[1] - raw[3]) * (raw[2] - raw[0]))
        inside = max(0, box[1] - box[3]) * max(0, box[2] - box[0])
        if inside == 0:
            continue
        outside = 1 - inside / raw_area
        # Cut by the edge first: a partial face scores low, and is still someone there.
        why = EDGE if outside > max_outside else WEAK if score < min_score else ""
        found.append((box, not why, why, float(score)))
    return found


def _overlaps(a: Box, b: Box) -> bool:
    return a[3] < b[1] and b[3] < a[1] and a[0] < b[2] and b[0] < a[2]


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))


def changed_regions(
    before: np.ndarray,
    after: np.ndarray,
    limit: float,
    tracks: tuple[Track, ...],
    size: tuple[int, int],
    *,
    pad: int = 40,
) -> list[Box]:
    """Boxes (transport pixels) around the 8 x 8 blocks that changed by more than
    ``limit`` between two thumbnails, padded by ``pad`` and widened to the whole of
    every track whose face they touch (plus half its width on each side: the face
    moved), merged where they overlap. Empty when nothing changed."""
    width, height = size
    rows, cols = after.shape
    block_y, block_x = height / rows, width / cols
    changed = changed_blocks(before, after, limit)
    if not changed.any():
        return []
    # Connected groups of changed blocks, found on cells of 2 x 2 blocks (8-neighbours:
    # gaps of up to two blocks are bridged). Cells, not blocks: a person moving changes
    # thousands of blocks, and following each one's neighbours took 10 ms a check in
    # Python; the padded boxes are merged where they overlap below in any case.
    cells = np.zeros(((rows + 1) // 2, (cols + 1) // 2), dtype=bool)
    for dr in (0, 1):
        for dc in (0, 1):
            part = changed[dr::2, dc::2]
            cells[: part.shape[0], : part.shape[1]] |= part
    todo = {(int(r), int(c)) for r, c in zip(*np.nonzero(cells), strict=True)}
    boxes: list[Box] = []
    while todo:
        stack = [todo.pop()]
        r0 = r1 = stack[0][0]
        c0 = c1 = stack[0][1]
        while stack:
            r, c = stack.pop()
            r0, r1, c0, c1 = min(r0, r), max(r1, r), min(c0, c), max(c1, c)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    near = (r + dr, c + dc)
                    if near in todo:
                        todo.remove(near)
                        stack.append(near)
        # Back to blocks: the changed blocks inside the group's cells.
        inside = changed[2 * r0 : 2 * r1 + 2, 2 * c0 : 2 * c1 + 2]
        hit_rows = np.nonzero(inside.any(axis=1))[0]
        hit_cols = np.nonzero(inside.any(axis=0))[0]
        b0, b1 = 2 * r0 + int(hit_rows[0]), 2 * r0 + int(hit_rows[-1])
        k0, k1 = 2 * c0 + int(hit_cols[0]), 2 * c0 + int(hit_cols[-1])
        boxes.append(
            (
                max(0, int(b0 * block_y) - pad),
                min(width, int((k1 + 1) * block_x) + pad),
                min(height, int((b1 + 1) * block_y) + pad),
                max(0, int(k0 * block_x) - pad),
            )
        )
    changes = list(boxes)
    for track in tracks:
        top, right, bottom, left = track.box
        half = (right - left) // 2
        around = (
            max(0, top - half),
            min(width, right + half),
            min(height, bottom + half),
            max(0, left - half),
        )
        if any(_overlaps(track.box, box) for box in changes):
            boxes.append(around)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _overlaps(boxes[i], boxes[j]):
                    boxes[i] = _union(boxes[i], boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _detect_regions(
    image: np.ndarray,
    regions: list[Box],
    detect_width: int,
    *,
    min_score: float,
    max_outside: float,
) -> list[Detection] | None:
    """Detection on each region (scaled like the whole frame would be), or None."""
    height, width = image.shape[:2]
    factor = detect_width / width
    found: list[Detection] = []
    for region in regions:
        top, right, bottom, left = region
        crop = np.ascontiguousarray(image[top:bottom, left:right])
        small, scale = _downscale(crop, max(16, round((right - left) * factor)))
        part = _detect(
            small,
            scale,
            (width, height),
            min_score=min_score,
            max_outside=max_outside,
            region=region,
        )
        if part is None:
            return None
        found += part
    return found


@dataclass(frozen=True)
class MirrorFace:
    """A face found on a mirrored edge strip: ``box`` is its visible part in the frame."""

    box: Box
    score: float
    strip: np.ndarray = field(compare=False, repr=False)
    strip_box: Box = (0, 0, 0, 0)  # the whole (mirror-completed) face in ``strip``


def edge_strip(image: np.ndarray, side: str, share: float) -> tuple[np.ndarray, int]:
    """(the ``side`` edge's strip joined to its mirror image, the strip's width ``s``).

    Left: ``mirror | strip``; right: ``strip | mirror``; the frame's edge is at x = s."""
    width = image.shape[1]
    s = max(8, round(width * share))
    if side == "left":
        part = image[:, :s]
        joined = np.concatenate([part[:, ::-1], part], axis=1)
    else:
        part = image[:, width - s :]
        joined = np.concatenate([part, part[:, ::-1]], axis=1)
    return np.ascontiguousarray(joined), s


def _detect_mirrored(
    image: np.ndarray, sides: list[tuple[str, int, int]], job: CheckJob, found: list[Detection]
) -> list[MirrorFace]:
    """Faces about half out of the picture at ``sides`` (side, top row, bottom row), not
    among ``found`` already."""
    from face_recognition.api import face_detector

    width = image.shape[1]
    faces: list[MirrorFace] = []
    for side, row0, row1 in sides:
        strip, s = edge_strip(image[row0:row1], side, job.mirror_share)
        small, scale = _downscale(strip, max(16, round(2 * s * job.mirror_detect_width / width)))
        rects, scores, _kinds = face_detector.run(small, 0, 0.0)
        for rect, score in zip(rects, scores, strict=True):
            if score < job.min_score:
                continue
            top = max(0, round(rect.top() * scale))  # in the strip (from row0)
            bottom = min(row1 - row0, round(rect.bottom() * scale))
            left, right = round(rect.left() * scale), round(rect.right() * scale)
            face = right - left
            # The mirror's axis (the frame's edge) must run down the middle of the face:
            # anything else is a face inside the frame (HOG's own job) or its reflection.
            if face <= 0 or abs((left + right) / 2 - s) > 0.2 * face:
                continue
            if side == "left":
                box = (row0 + top, right - s, row0 + bottom, 0)
            else:
                box = (row0 + top, width, row0 + bottom, left + width - s)
            if box[1] - box[3] < 8 or any(
                iou(box, d[0]) > 0.2 or _overlaps_centre(box, d[0]) for d in found
            ):
                continue
            whole = (top, right, bottom, left)
            faces.append(MirrorFace(box=box, score=float(score), strip=strip, strip_box=whole))
    return faces


def _overlaps_centre(a: Box, b: Box) -> bool:
    """The centre of ``a`` lies inside ``b``."""
    cy, cx = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= cy <= b[2] and b[3] <= cx <= b[1]


def mirror_sides(
    job: CheckJob, thumb: np.ndarray, size: tuple[int, int], regions: list[Box] | None
) -> list[tuple[str, int, int]]:
    """The edges to scan for half-out faces in this check, each with the rows to scan
    (side, top, bottom): where the picture's outermost columns changed since the last
    full detection (those rows, padded by ``MIRROR_PAD`` px), or where a track touches
    that edge (its rows, padded by half its height); the whole height when there is
    nothing to compare with. ``regions``: a partial detection, only edges a region
    reaches."""
    if not job.mirror_edges:
        return []
    width, height = size
    rows, cols = thumb.shape
    block = height / rows
    # A face half out of the picture covers its outermost pixels: only a change there
    # (two 8 px thumbnail columns), not anywhere in the strip, calls for a scan.
    strip_cols = min(2, cols)
    before = job.previous_thumb
    changed = (
        changed_blocks(before, thumb, job.unchanged_max)
        if before is not None and before.shape == thumb.shape
        else None
    )
    comparable = changed is not None
    sides = []
    for side in ("left", "right"):
        if regions is not None and not any(
            (r[3] <= 0 if side == "left" else r[1] >= width) for r in regions
        ):
            continue
        if not comparable:
            sides.append((side, 0, height))
            continue
        # Faces at that edge that only the mirror keeps track of (an approved face
        # HOG still sees there needs no scan of its own).
        spans = [
            (t.box[0] - (t.box[2] - t.box[0]) // 2, t.box[2] + (t.box[2] - t.box[0]) // 2)
            for t in job.tracks
            if (t.box[3] <= 2 if side == "left" else t.box[1] >= width - 2)
            and (t.mirrored or t.status != APPROVED)
        ]
        cut = slice(0, strip_cols) if side == "left" else slice(cols - strip_cols, cols)
        assert changed is not None  # noqa: S101 - comparable
        moved = np.nonzero(changed[:, cut].any(axis=1))[0]
        if len(moved):
            spans.append(
                (round(moved[0] * block) - MIRROR_PAD, round((moved[-1] + 1) * block) + MIRROR_PAD)
            )
        if spans:
            top = max(0, min(a for a, _ in spans))
            bottom = min(height, max(b for _, b in spans))
            if bottom - top > 0.6 * height:
                top, bottom = 0, height
            sides.append((side, top, bottom))
    return sides


def merge_sides(
    sides: list[tuple[str, int, int]], more: tuple[tuple[str, int, int], ...]
) -> list[tuple[str, int, int]]:
    """``sides`` and ``more`` as one scan per side, covering the rows of both."""
    if not more:
        return sides
    rows: dict[str, tuple[int, int]] = {}
    for side, top, bottom in (*sides, *more):
        was = rows.get(side)
        rows[side] = (top, bottom) if was is None else (min(was[0], top), max(was[1], bottom))
    return [(side, *rows[side]) for side in ("left", "right") if side in rows]


def _new_face(candidates: tuple[Track, ...], detections: list[Detection], threshold: float) -> bool:
    """A detection good enough to encode that continues none of the tracks: a new face,
    encoded in this check."""
    matched = associate(candidates, [d[0] for d in detections], threshold)
    return any(good and index not in matched for index, (_b, good, _w, _s) in enumerate(detections))


# Rows scanned above and below a change at the picture's edge (transport pixels): the
# rest of a face whose mouth or eyes moved.
MIRROR_PAD = 96


def looks_like_face(image: np.ndarray, box: Box, *, size: int = 100, margin: float = 0.35) -> bool:
    """Second opinion from dlib's CNN face detector (mmod, in face_recognition_models)
    on a crop around ``box`` scaled so the face is ``size`` px wide (≈ 30-50 ms with
    dlib built with OpenBLAS, 70-110 ms with dlib-bin). At 80 px, near the detector's
    smallest window, the two dlib builds disagreed on a bright stranger; at 100 px
    both found all 17 weak stranger detections of the evaluation and none of its 15
    false detections."""
    from face_recognition.api import cnn_face_detector
    from PIL import Image

    top, right, bottom, left = box
    face = max(1, right - left)
    m = round(face * margin)
    t, l_ = max(0, top - m), max(0, left - m)
    b, r = min(image.shape[0], bottom + m), min(image.shape[1], right + m)
    factor = size / face
    crop = Image.fromarray(np.ascontiguousarray(image[t:b, l_:r]))
    scaled = np.asarray(
        crop.resize(
            (max(1, round(crop.width * factor)), max(1, round(crop.height * factor))),
            Image.Resampling.BILINEAR,
        )
    )
    target = (
        round((top - t) * factor),
        round((right - l_) * factor),
        round((bottom - t) * factor),
        round((left - l_) * factor),
    )
    for found in cnn_face_detector(scaled, 0):
        rect = found.rect
        if iou((rect.top(), rect.right(), rect.bottom(), rect.left()), target) >= 0.2:
            return True
    return False


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


def _quiet(track: Track) -> bool:
    """A track that lets detection be skipped or limited to what changed."""
    return track.status == APPROVED or (track.status == UNKNOWN and track.reason == NOT_FACE)


# People sliding out of the picture were last seen whole 23-75 px from the edge, up to
# 0.52 of their face's width (measured on the evaluation's held-out sets): within this
# share of its width from an edge, a face is near it.
NEAR_EDGE = 0.75


def near_edge(box: Box, width: int) -> str:
    """The edge of a picture ``width`` wide that ``box`` is near (within ``NEAR_EDGE``
    of its own width, or cut by it): "left", "right" or ""."""
    gap = NEAR_EDGE * max(1, box[1] - box[3])
    if box[3] <= gap:
        return "left"
    if box[1] >= width - gap:
        return "right"
    return ""


# An approved face this close to an edge (a share of its width) may leave by it between
# two checks, however it moved before.
CLOSE_TO_EDGE = 0.25
# Moving towards an edge: by at least this share of the face's width between its last
# two detections (people leaning out of shot in the evaluation: 0.2-0.5 of it a check;
# sitting, under 0.1).
LEAVING_MOVE = 0.1
# Or its inner side got from where the face was last seen to where the half face is now
# at no more than this share of the face's width a check.
LEAVING_SPEED = 0.6


def _leaving(track: Track, box: Box, left: bool, width: int) -> bool:
    """The face cut by the edge at ``box`` (the left edge if ``left``, else the right)
    may be ``track`` (near that edge, see :func:`near_edge`) leaving by it: the track
    was close to the edge, or moving towards it, or its inner side came from the
    track's last box at a person's pace.
    Not a face sitting still further in that vanishes in the very check in which a face
    cut by the edge turns up beside it (measured: a stranger at the edge whose picture
    hid an approved face sitting still 107 px from it, 0.75 of its width, 1.1 widths in
    one check, had been handed that face's approval)."""
    face = max(1, track.box[1] - track.box[3])
    gap = track.box[3] if left else width - track.box[1]
    if gap <= CLOSE_TO_EDGE * face:
        return True
    if (-track.moved if left else track.moved) >= LEAVING_MOVE * face:
        return True
    # Checks since the track was last seen: the ones it was missed, and this one.
    travelled = track.box[1] - box[1] if left else box[3] - track.box[3]
    return travelled <= LEAVING_SPEED * face * (track.missed + 1)


def _continue_at_the_edge(
    matched: dict[int, Track],
    candidates: tuple[Track, ...],
    detections: list[Detection],
    size: tuple[int, int],
) -> None:
    """Someone approved who slides out of the picture moves faster than IoU follows:
    their last whole box and the half face the mirror finds at the edge a check or two
    later barely overlap. A face cut by an edge (``edge``) that no track continues is
    taken as the continuation of an approved track not seen in this check, when that
    track was last near the same edge (see :func:`near_edge`) at the same height and
    may have left by it (see :func:`_leaving`).
    Only cut faces are continued this way: once the face is whole again its chip is
    compared as usual, so a stranger who replaces them there is encoded at once. What
    is not caught: a stranger who takes their place at that edge within those checks
    and stays cut by it. Checking the half face on its mirror image instead was tried
    and dropped: people's own mirrored half faces, handed on so, measured 0.55-0.75
    from their enrolment (bright light, 65 % out), strangers' 0.63 and further, so it
    paused calls on approved people (held-out video fair-3045)."""
    width, _height = size
    taken = {t.id for t in matched.values()}
    for index, (box, _good, why, _score) in enumerate(detections):
        if index in matched or why != EDGE:
            continue
        left_edge, right_edge = box[3] <= 0, box[1] >= width
        best: Track | None = None
        for track in candidates:
            if track.id in taken or track.status != APPROVED:
                continue
            # Last seen near that edge: a face further in, left undetected in this
            # check, is not continued by a stranger at the edge.
            side = near_edge(track.box, width)
            near = (left_edge and side == "left") or (right_edge and side == "right")
            # ... and the cut face reaches back to where that face was (overlapping it,
            # or within a quarter of its width): someone leaving by the edge. A face
            # cut by the edge further out, beside an approved face still in the
            # picture that HOG missed this once, is someone else (measured: a stranger
            # 60 % out at the left, 46 px beside an approved face 107 px from it).
            reach = 0.25 * (track.box[1] - track.box[3])
            adjoins = (left_edge and box[1] >= track.box[3] - reach) or (
                right_edge and box[3] <= track.box[1] + reach
            )
            near = near and adjoins and _leaving(track, box, left_edge, width)
            rows = min(box[2], track.box[2]) - max(box[0], track.box[0])
            if near and rows >= 0.5 * min(box[2] - box[0], track.box[2] - track.box[0]):
                best = track
                break
        if best is not None:
            matched[index] = best
            taken.add(best.id)


def analyse(job: CheckJob) -> CheckResult:
    """Run one face check. Raises ValueError on a bad image; anything else is a bug."""
    import face_recognition

    started = time.perf_counter()
    cpu_started = time.process_time()
    image = check_image(job.image)
    height, width = image.shape[:2]
    thumb = thumbnail(image)
    visible = [t for t in job.tracks if t.missed == 0]
    quiet = job.since_full + 1 < job.full_every and all(_quiet(t) for t in job.tracks)
    still = quiet and unchanged(job.previous_thumb, thumb, job.unchanged_max)
    if still and not job.mirror_pending:
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
            current_thumb=thumb,
            since_full=job.since_full + 1,
        )
    detections: list[Detection] | None = None
    regions: list[Box] = []
    if still:
        # Unchanged, but with edge scans put off by the last check: those scans only
        # (a partial detection of nothing; the tracks stand).
        detections = []
    elif (
        quiet
        and job.partial
        and job.previous_thumb is not None
        and job.previous_thumb.shape == thumb.shape
    ):
        # Only part of the picture changed since the last full detection: detect there
        # (and around the tracks it touches); the tracks elsewhere stand as they were.
        regions = changed_regions(
            job.previous_thumb, thumb, job.unchanged_max, job.tracks, (width, height)
        )
        area = sum((r[1] - r[3]) * (r[2] - r[0]) for r in regions)
        if regions and area <= job.partial_max_share * width * height:
            detections = _detect_regions(
                image,
                regions,
                max(16, job.detect_width),
                min_score=job.min_score,
                max_outside=job.max_outside,
            )
    partial = detections is not None
    full_because = ""
    if detections is None:
        if not job.partial:
            full_because = FULL_OFF
        elif job.previous_thumb is None or job.previous_thumb.shape != thumb.shape:
            full_because = FULL_FIRST
        elif not all(_quiet(t) for t in job.tracks):
            full_because = FULL_FACES
        elif not quiet:
            full_because = FULL_BACKSTOP
        elif regions and area <= job.partial_max_share * width * height:
            full_because = FULL_CUT
        else:
            full_because = FULL_WIDE
        regions = []
        small, scale = _downscale(image, max(16, job.detect_width))
        detections = _detect(
            small, scale, (width, height), min_score=job.min_score, max_outside=job.max_outside
        )
        assert detections is not None  # noqa: S101 - only crops give None
    detected_at = time.perf_counter()

    # With a partial detection, tracks away from every region are left as they were.
    if partial:
        standing = [t for t in job.tracks if not any(_overlaps(t.box, r) for r in regions)]
    else:
        standing = []
    standing_ids = {t.id for t in standing}
    candidates = tuple(t for t in job.tracks if t.id not in standing_ids)
    # Faces about half out of the picture (HOG does not see a half face): found on the
    # edge strips joined to their mirror image, where something changed there.
    sides = merge_sides(
        mirror_sides(job, thumb, (width, height), regions if partial else None),
        job.mirror_pending,
    )
    pending: tuple[tuple[str, int, int], ...] = ()
    if sides and not job.mirror_pending and _new_face(candidates, detections, job.iou_threshold):
        # This check encodes a new face: the edge scan waits for the next check (once,
        # 0.25-0.5 s later), so that no check pays for both. A face half out of the
        # picture counts only when it lingers (seconds), so nothing is lost by it.
        pending, sides = tuple(sides), []
    mirror_faces = _detect_mirrored(image, sides, job, detections) if sides else []
    mirror_faces = [m for m in mirror_faces if not any(iou(m.box, t.box) > 0.2 for t in standing)]
    mirror_at = len(detections)
    detections = detections + [(m.box, False, EDGE, m.score) for m in mirror_faces]
    to_mirror: list[tuple[int, MirrorFace]] = []  # (index into current, the face)
    boxes = [d[0] for d in detections]
    matched = associate(candidates, boxes, job.iou_threshold)
    _continue_at_the_edge(matched, candidates, detections, (width, height))
    next_id = job.next_track_id
    current: list[Track] = []
    to_encode: list[int] = []  # indexes into current
    chips: dict[int, np.ndarray] = {}  # index into current → chip of a face to encode
    # The one approved track due for re-verification in this check (the most overdue).
    due = [
        track
        for track in matched.values()
        if _quiet(track) and track.since_encode + 1 >= job.reverify_every
    ]
    reverify = max(due, key=lambda t: t.since_encode).id if due else None
    for index, (box, good, why, score) in enumerate(detections):
        previous = matched.get(index)
        chip = face_chip(image, box) if good else None
        if previous is None:
            track = Track(id=next_id, box=box, status=UNKNOWN, since_encode=0, score=score)
            next_id += 1
            needs = True
        else:
            track = replace(
                previous,
                box=box,
                since_encode=previous.since_encode + 1,
                missed=0,
                moved=round((box[1] + box[3] - previous.box[1] - previous.box[3]) / 2),
            )
            if (
                previous.status in (APPROVED, UNAPPROVED)
                or previous.reason == NOT_FACE
                or (previous.mirrored and previous.reason == BAND)
            ):
                # Known either way: encoded again only if the face looks different
                # (or, approved, for the periodic re-verification). A known track cut
                # by the edge keeps its status: its chip cannot be compared (nor can a
                # half face's mirror image in the band: it stays unclear until whole).
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
            track = replace(track, score=score)
        elif needs:
            # A weak or cut-off new face says nothing either way: unknown, with why.
            track = replace(track, status=UNKNOWN, chip=None, reason=why or track.reason)
        if index >= mirror_at and track.status == APPROVED:
            # An approved face that only the mirror sees now: its edge is scanned at
            # every full detection while it stays there (see mirror_sides).
            track = replace(track, mirrored=True)
        if (
            index >= mirror_at
            and track.status == UNKNOWN
            and track.reason == EDGE
            and not track.mirrored
        ):
            to_mirror.append((len(current), mirror_faces[index - mirror_at]))
        current.append(track)

    encodings: dict[int, np.ndarray] = {}
    verified = 0
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
            if (
                status == UNAPPROVED
                and track.score < job.verify_below
                and track.status != UNAPPROVED
            ):
                # A weak detection that would count against the family: is it a face?
                verified += 1
                if not looks_like_face(image, track.box):
                    status, reason = UNKNOWN, NOT_FACE
            current[i] = replace(
                track,
                status=status,
                since_encode=0,
                distance=distance,
                chip=chips[i],
                reason=reason,
                approved_before=track.approved_before or status == APPROVED,
            )
            encodings[track.id] = vector
    for i, face in to_mirror:
        # Once per track: the mirror-completed face, encoded. Near an approved encoding
        # (with a margin: half a face mirrored is not the face) → approved; otherwise it
        # stays unknown at the edge and counts if it lingers, unless it is not a face.
        track = current[i]
        vector = face_recognition.face_encodings(
            face.strip, known_face_locations=[face.strip_box], num_jitters=1
        )[0]
        approved = np.asarray(job.approved, dtype=np.float64).reshape(-1, 128)
        distance = (
            float(np.min(face_recognition.face_distance(approved, vector)))
            if len(approved)
            else float("inf")
        )
        status, reason = UNKNOWN, EDGE
        if distance <= job.tolerance - job.mirror_margin:
            status, reason = APPROVED, ""
        elif distance <= job.tolerance:
            # Within the tolerance, but not by the margin: unclear, and never lingers
            # into a pause (measured: approved people's mirrored halves 0.55-0.59 on the
            # held-out sets, strangers' 0.63 and further).
            reason = BAND
        else:
            verified += 1
            if not looks_like_face(face.strip, face.strip_box):
                reason = NOT_FACE
        current[i] = replace(
            track,
            status=status,
            reason=reason,
            distance=distance,
            since_encode=0,
            mirrored=True,
            approved_before=track.approved_before or status == APPROVED,
        )
    encoded_at = time.perf_counter()

    detected_ids = tuple(t.id for t in current) + tuple(t.id for t in standing if t.missed == 0)
    current += standing
    # Keep tracks that were not detected this time for a couple of checks (an approved
    # face that went out at the edge, for longer).
    continued = {track.id for track in matched.values()} | standing_ids
    for track in job.tracks:
        # Approved and last seen at (or near) an edge: maybe leaving by it, and found by
        # neither HOG nor the mirror until enough of the face has gone.
        at_edge = track.status == APPROVED and bool(near_edge(track.box, width))
        keep = job.keep_missed_edge if at_edge else job.keep_missed
        if track.id not in continued and track.missed < keep:
            current.append(
                replace(track, since_encode=track.since_encode + 1, missed=track.missed + 1)
            )
    return CheckResult(
        tracks=tuple(current),
        next_track_id=next_id,
        detected=detected_ids,
        encoded=tuple(current[i].id for i in to_encode)
        + tuple(current[i].id for i, _ in to_mirror),
        encodings=encodings,
        image_size=(width, height),
        detect_ms=(detected_at - started) * 1000,
        encode_ms=(encoded_at - detected_at) * 1000,
        total_ms=(encoded_at - started) * 1000,
        cpu_ms=(time.process_time() - cpu_started) * 1000,
        worker_pid=os.getpid(),
        thumb=job.previous_thumb if partial else thumb,
        current_thumb=thumb,
        since_full=job.since_full + 1 if partial else 0,
        partial=partial,
        regions=len(regions),
        verified=verified,
        mirror_sides=len(sides),
        mirrored=len(mirror_faces),
        mirror_pending=pending,
        full_because=full_because,
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
    """Pool initializer: load the models (at the relay's own priority)."""
    if owner_pid:
        _exit_with(owner_pid)
    # No `nice`: workers at +5 (so that media would win the CPU) were starved by any
    # other busy process on the host. With both cores loaded (stress-ng) a stranger on
    # camera was not paused within 3 minutes; at the relay's priority, in 10 s. The
    # relay forwards without re-encoding and pools are sized to the cores per relay
    # process (calls/facecheck/pool.py), so the two no longer fight over a core.
    # Ctrl-C in a terminal reaches the whole process group: the relay shuts the pool
    # down itself, so a worker must not die mid-check with a traceback.
    import signal

    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
