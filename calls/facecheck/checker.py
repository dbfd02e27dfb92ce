"""FaceChecker: the face checks of one call, driven from the relay's event loop.

The relay hands every decoded frame to :meth:`FaceChecker.offer_frame` (O(1): it only
keeps the newest frame per side). One small task per checked side wakes about
``checks_per_second`` times a second, converts the newest frame (sub-millisecond, in
C), runs the analysis in the shared process pool and feeds the result to the side's
:class:`~calls.facecheck.decision.SideDecision`. A side never has more than one check
in flight: frames that arrive meanwhile replace each other and are skipped, never
queued. Pauses and resumes are reported through the async callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from calls.facecheck.analysis import TRANSPORT_WIDTH, CheckJob, CheckResult, Track, analyse
from calls.facecheck.decision import Pause, Resume, SideDecision
from calls.facecheck.pool import FaceCheckPool, WorkerCrashed
from calls.facecheck.snapshot import snapshot_jpeg
from purplevisits import metrics

if TYPE_CHECKING:
    from establishments.models import Establishment

logger = logging.getLogger("calls.facecheck")

FAMILY = "family"
PRISONER = "prisoner"
SIDES = (FAMILY, PRISONER)
# Same value as calls.models.PauseReason.UNAPPROVED_FACE (kept import-free for workers).
REASON_UNAPPROVED_FACE = "unapproved_face"
DECIDED_BY = "face_check"

OnPause = Callable[[str, str, bytes, dict[str, Any]], Awaitable[None]]
OnResume = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class CheckTiming:
    side: str
    at: float  # loop time when the check started
    convert_ms: float  # av.VideoFrame → RGB array, in the relay process
    worker_ms: float  # analysis inside the worker
    detect_ms: float  # of which face detection
    total_ms: float  # from start to decision, including the trip to the worker
    faces: int
    encoded: int
    error: str = ""
    cpu_ms: float = 0.0  # CPU time of the analysis in the worker
    skipped: bool = False  # detection skipped: picture unchanged, every face approved
    partial: bool = False  # detection only where the picture changed
    verified: int = 0  # weak detections given the CNN detector's second opinion
    mirror_sides: int = 0  # edge strips scanned for faces half out of the picture
    full_because: str = ""  # why the detection ran on the whole frame (analysis.FULL_*)


def frame_to_rgb(frame: Any, *, max_width: int = TRANSPORT_WIDTH) -> np.ndarray:
    """An ``av.VideoFrame`` (or an RGB array) as RGB, at most ``max_width`` wide."""
    if isinstance(frame, np.ndarray):
        image = frame
    else:
        width, height = int(frame.width), int(frame.height)
        if width > max_width:
            new_height = max(2, round(height * max_width / width))
            image = frame.to_ndarray(format="rgb24", width=max_width, height=new_height)
        else:
            image = frame.to_ndarray(format="rgb24")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"not an RGB frame: {image.shape} {image.dtype}")
    return image


@dataclass
class _SideState:
    approved: np.ndarray
    decision: SideDecision
    frame: Any = None
    frames_offered: int = 0
    frames_skipped: int = 0
    tracks: tuple[Track, ...] = ()
    next_track_id: int = 1
    checks: int = 0
    failures: int = 0
    last_image: np.ndarray | None = None
    busy: bool = False
    # The last full detection's thumbnail and the checks since; the thumbnails of the
    # checks since (the last ``recent_reference`` of them).
    thumb: np.ndarray | None = None
    since_full: int = 0
    recent: deque[np.ndarray] = field(default_factory=deque)
    # Edge scans the last check put off to this one.
    mirror_pending: tuple[tuple[str, int, int], ...] = ()


class FaceChecker:
    """The face checks of one call (see calls/facecheck/README.md)."""

    def __init__(
        self,
        *,
        pool: FaceCheckPool,
        approved_encodings: Sequence[np.ndarray],
        prisoner_encoding: np.ndarray | None = None,
        check_family: bool = True,
        tolerance: float = 0.6,
        checks_to_confirm: int = 2,
        checks_per_second: float = 2.0,
        auto_resume_seconds: float = 10.0,
        staff_only_resume: bool = False,
        on_pause: OnPause | None = None,
        on_resume: OnResume | None = None,
        detect_width: int | None = None,
        confirm_gap: float = 0.1,
        unknown_band: float = 0.07,
        linger_seconds: float = 3.0,
        skip_unchanged: bool = True,
        partial_detection: bool = True,
        mirror_edges: bool = True,
        recent_reference: int = 4,
        full_every: int = 10,
        exempt_children: int = 0,
        check_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
    ) -> None:
        if checks_per_second <= 0:
            raise ValueError("checks_per_second must be positive")
        if not 0 < tolerance < 1.5:
            raise ValueError("tolerance must be between 0 and 1.5")
        if detect_width is None:
            from django.conf import settings

            detect_width = int(getattr(settings, "FACE_CHECK_DETECT_WIDTH", 480))
        self.pool = pool
        self.tolerance = float(tolerance)
        self.interval = 1.0 / checks_per_second
        self.detect_width = detect_width
        self.confirm_gap = confirm_gap
        self.unknown_band = float(unknown_band)
        self.skip_unchanged = skip_unchanged
        self.partial_detection = partial_detection
        self.mirror_edges = mirror_edges
        if recent_reference < 0:
            raise ValueError("recent_reference must be 0 or more")
        self.recent_reference = int(recent_reference)
        if full_every < 1:
            raise ValueError("full_every must be 1 or more")
        self.full_every = int(full_every)
        self.check_timeout = check_timeout
        self.on_pause = on_pause
        self.on_resume = on_resume
        self.clock = clock
        self.label = label
        self.timings: deque[CheckTiming] = deque(maxlen=5000)
        approved = [_as_encoding(e) for e in approved_encodings]
        if check_family and not approved:
            logger.warning(
                "Face checks %s: no approved encodings for the family side; every face "
                "on that camera will count as unapproved.",
                label,
            )

        def decision(exempt: int = 0) -> SideDecision:
            return SideDecision(
                checks_to_confirm=checks_to_confirm,
                auto_resume_seconds=auto_resume_seconds,
                staff_only_resume=staff_only_resume,
                linger_seconds=linger_seconds,
                exempt_faces=exempt,
            )

        self._sides: dict[str, _SideState] = {}
        if check_family:
            # The children's rule applies to the family side only.
            self._sides[FAMILY] = _SideState(
                approved=_stack(approved), decision=decision(exempt_children)
            )
        if prisoner_encoding is not None:
            self._sides[PRISONER] = _SideState(
                approved=_stack([_as_encoding(prisoner_encoding)]), decision=decision()
            )
        self._wake = {side: asyncio.Event() for side in self._sides}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    @classmethod
    def for_establishment(
        cls,
        establishment: Establishment,
        *,
        pool: FaceCheckPool,
        approved_encodings: Sequence[np.ndarray],
        prisoner_encoding: np.ndarray | None = None,
        **kwargs: Any,
    ) -> FaceChecker:
        """A checker with the establishment's face-check settings."""
        return cls(
            pool=pool,
            approved_encodings=approved_encodings,
            prisoner_encoding=prisoner_encoding,
            tolerance=establishment.face_match_tolerance,
            checks_to_confirm=establishment.face_checks_to_confirm,
            checks_per_second=establishment.face_checks_per_second,
            auto_resume_seconds=establishment.face_auto_resume_seconds,
            staff_only_resume=establishment.face_resume_staff_only,
            **kwargs,
        )

    # --- what the relay calls ----------------------------------------------------------

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(self._sides)

    def offer_frame(self, side: str, frame: Any) -> None:
        """Keep ``frame`` as the newest of ``side``. O(1); never blocks, never raises on
        the frame itself (a side that is not checked is ignored)."""
        state = self._sides.get(side)
        if state is None:
            if side not in SIDES:
                raise ValueError(f"unknown side {side!r}")
            return
        if state.frame is not None:
            state.frames_skipped += 1
        state.frame = frame
        state.frames_offered += 1
        self._wake[side].set()

    def start(self) -> None:
        """Start the per-side check loops on the running event loop."""
        if self._tasks:
            return
        for side in self._sides:
            self._tasks.append(asyncio.create_task(self._side_loop(side), name=f"facecheck-{side}"))

    async def stop(self) -> None:
        """Stop checking. A check still running in a worker finishes there, unused."""
        self._stopped = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in self._sides.values():
            state.frame = None
            state.last_image = None

    def is_paused(self, side: str) -> bool:
        state = self._sides.get(side)
        return bool(state and state.decision.paused)

    @property
    def paused_sides(self) -> list[str]:
        return [side for side, state in self._sides.items() if state.decision.paused]

    def staff_resume(self, side: str | None = None) -> list[str]:
        """Staff resumed the call: end the face pause of ``side`` (or every side).

        Returns the sides that were paused. No ``on_resume`` callback: the relay that
        handles the staff action records it (who decided is staff, not the checker).
        """
        resumed = []
        now = self.clock()
        for name, state in self._sides.items():
            if side in (None, name) and state.decision.staff_resume(now) is not None:
                resumed.append(name)
        return resumed

    def stats(self, side: str) -> dict[str, int]:
        state = self._sides[side]
        return {
            "frames_offered": state.frames_offered,
            "frames_skipped": state.frames_skipped,
            "checks": state.checks,
            "failures": state.failures,
        }

    # --- the checks ---------------------------------------------------------------------

    async def _side_loop(self, side: str) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake[side]
        next_due = loop.time()
        while not self._stopped:
            await wake.wait()
            delay = next_due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            started = loop.time()
            try:
                await self.check_once(side)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the call's checks
                logger.exception("Face check %s/%s crashed; continuing.", self.label, side)
            next_due = started + self.next_gap(side)

    def next_gap(self, side: str) -> float:
        """Seconds from the start of the last check of ``side`` to the next one: the
        confirming check comes sooner (``confirm_gap``: the next frames) after a first
        sighting of an unapproved face."""
        decision = self._sides[side].decision
        confirming = decision.streak > 0 and not decision.paused
        return min(self.interval, self.confirm_gap) if confirming else self.interval

    async def check_once(self, side: str) -> CheckResult | None:
        """Check the newest frame of ``side`` now. None if there was none or it failed.

        The side loop calls this; tests call it directly with a fake clock.
        """
        state = self._sides[side]
        frame = state.frame
        if frame is None or state.busy:
            return None
        state.frame = None
        self._wake[side].clear()
        state.busy = True
        started = asyncio.get_running_loop().time()
        try:
            return await self._check(side, state, frame, started)
        finally:
            state.busy = False

    async def _check(
        self, side: str, state: _SideState, frame: Any, started: float
    ) -> CheckResult | None:
        t0 = time.perf_counter()
        try:
            image = frame_to_rgb(frame)
        except Exception as error:  # corrupt or unconvertible frame: skip it
            state.failures += 1
            logger.warning(
                "Face check %s/%s: unusable frame skipped (%s).", self.label, side, error
            )
            self._record(side, started, t0, None, f"frame: {error}")
            return None
        convert_ms = (time.perf_counter() - t0) * 1000
        job = CheckJob(
            image=image,
            tracks=state.tracks,
            approved=state.approved,
            tolerance=self.tolerance,
            detect_width=self.detect_width,
            next_track_id=state.next_track_id,
            unknown_band=self.unknown_band,
            previous_thumb=self._reference(state) if self.skip_unchanged else None,
            since_full=state.since_full,
            partial=self.partial_detection,
            mirror_edges=self.mirror_edges,
            full_every=self.full_every,
            mirror_pending=state.mirror_pending,
        )
        try:
            result = await self.pool.run(analyse, job, timeout=self.check_timeout)
        except WorkerCrashed as error:
            state.failures += 1
            self._record(side, started, t0, None, f"worker crashed: {error}", convert_ms)
            return None
        except TimeoutError:
            state.failures += 1
            logger.error("Face check %s/%s timed out; skipped.", self.label, side)
            self._record(side, started, t0, None, "timeout", convert_ms)
            return None
        except Exception as error:
            state.failures += 1
            logger.exception("Face check %s/%s failed; skipped.", self.label, side)
            self._record(side, started, t0, None, f"analysis: {error}", convert_ms)
            return None
        if self._stopped:
            return result
        state.checks += 1
        state.tracks = result.tracks
        state.next_track_id = result.next_track_id
        self._keep_reference(state, result)
        state.mirror_pending = result.mirror_pending
        state.last_image = image
        transition = state.decision.observe(self.clock(), result)
        self._record(side, started, t0, result, "", convert_ms)
        if isinstance(transition, Pause):
            await self._paused(side, image, transition)
        elif isinstance(transition, Resume):
            await self._resumed(side, transition)
        return result

    def _reference(self, state: _SideState) -> np.ndarray | None:
        """What this check's picture is compared with ("changed", "still", edge scans):
        the picture of ``recent_reference`` checks ago, or the last full detection's
        when that is more recent. A part of the picture that changed is detected on at
        that many checks after it settles (a face leaning out at an edge can take a
        few checks to be found), and no longer after that: the changes since the last
        full detection do not add up into more and more partial detections and then a
        full one. 0: always the last full detection's."""
        k = self.recent_reference
        if k and len(state.recent) >= k:
            return state.recent[-k]
        return state.thumb

    def _keep_reference(self, state: _SideState, result: CheckResult) -> None:
        state.since_full = result.since_full
        if result.since_full == 0 or state.thumb is None:
            state.thumb = result.thumb
            state.recent.clear()
        elif self.recent_reference and result.current_thumb is not None:
            state.recent.append(result.current_thumb)
            while len(state.recent) > self.recent_reference:
                state.recent.popleft()

    async def _paused(self, side: str, image: np.ndarray, pause: Pause) -> None:
        try:
            jpeg = await asyncio.to_thread(snapshot_jpeg, image, pause.box)
        except Exception:
            logger.exception("Face check %s/%s: snapshot failed.", self.label, side)
            jpeg = b""
        distance = pause.track.distance
        detail = {
            "side": side,
            "decided_by": DECIDED_BY,
            "checks": pause.checks,
            "faces": pause.faces,
            "box": list(pause.box),
            "frame_size": [int(image.shape[1]), int(image.shape[0])],
            "distance": round(distance, 3) if distance is not None and distance < 1e9 else None,
            "tolerance": self.tolerance,
            "resume": "staff" if self._sides[side].decision.staff_only_resume else "auto",
            # True: a face cut by the edge / just above the tolerance that stayed for
            # linger_seconds (not a face confirmed as someone else).
            "lingered": pause.lingered,
            # Children's rule: unrecognised faces (the exempt children?) without anyone
            # approved in view for linger_seconds.
            "lead_out_of_view": pause.lead_out_of_view,
        }
        logger.info("Face check %s/%s: unapproved face, pausing (%s).", self.label, side, detail)
        if self.on_pause is not None:
            try:
                await self.on_pause(side, REASON_UNAPPROVED_FACE, jpeg, detail)
            except Exception:
                logger.exception("Face check %s/%s: on_pause callback failed.", self.label, side)

    async def _resumed(self, side: str, resume: Resume) -> None:
        detail = {
            "side": side,
            "decided_by": DECIDED_BY,
            "clear_seconds": round(resume.clear_seconds, 2),
            "paused_seconds": round(resume.paused_seconds, 2),
        }
        logger.info("Face check %s/%s: clear again, resuming (%s).", self.label, side, detail)
        if self.on_resume is not None:
            try:
                await self.on_resume(side, detail)
            except Exception:
                logger.exception("Face check %s/%s: on_resume callback failed.", self.label, side)

    def _record(
        self,
        side: str,
        started: float,
        t0: float,
        result: CheckResult | None,
        error: str,
        convert_ms: float = 0.0,
    ) -> None:
        self.timings.append(
            CheckTiming(
                side=side,
                at=started,
                convert_ms=convert_ms,
                worker_ms=result.total_ms if result else 0.0,
                detect_ms=result.detect_ms if result else 0.0,
                total_ms=(time.perf_counter() - t0) * 1000,
                faces=len(result.detected) if result else 0,
                encoded=len(result.encoded) if result else 0,
                error=error,
                cpu_ms=result.cpu_ms if result else 0.0,
                skipped=result.skipped if result else False,
                partial=result.partial if result else False,
                verified=result.verified if result else 0,
                mirror_sides=result.mirror_sides if result else 0,
                full_because=result.full_because if result else "",
            )
        )
        metrics.face_check_observed(self.timings[-1].total_ms)  # /metrics


def _as_encoding(value: Any) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float64).reshape(-1)
    if vector.shape != (128,) or not np.all(np.isfinite(vector)):
        raise ValueError("a face encoding is 128 finite numbers")
    return vector


def _stack(encodings: list[np.ndarray]) -> np.ndarray:
    return np.stack(encodings) if encodings else np.zeros((0, 128), dtype=np.float64)
