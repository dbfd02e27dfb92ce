"""When to pause and when to resume one video stream: a small state machine, no I/O.

Rules (DOMAIN.md, "Calls"):

- an unapproved face seen in ``checks_to_confirm`` consecutive checks pauses the stream;
- a check in which a face seen unapproved in this count is only unclear (``unknown``,
  or not detected this time but still tracked) holds the count: it neither counts
  nor resets, so one blurred or turned frame does not let a stranger start again;
- any other check without an unapproved face resets that count (no face at all,
  approved faces only, or unclear faces that were never seen unapproved);
- a face cut by the frame's edge (``unknown`` for the reason ``edge``) that stays so
  for ``linger_seconds`` counts as unapproved and pauses at once: a paused call with
  a plain reason is better than a hidden watcher. Weak detections (maybe no face at
  all) and faces just above the tolerance (``band``: measured, approved people in
  poor pictures stay there for seconds) never do;
- the children's rule (``exempt_faces`` > 0: that many children on the booking are
  not face-checked): up to ``exempt_faces`` faces that are not approved are let be
  while an approved person (the lead visitor) is in view; with nobody approved in
  view for ``linger_seconds`` they count as usual, and more such faces than there
  are exempt children always count;
- a failed check (worker crash, bad frame) neither counts nor resets;
- once paused, the stream resumes by itself after ``auto_resume_seconds`` of checks
  without an unapproved face, unless ``staff_only_resume``: then only
  :meth:`SideDecision.staff_resume` ends the pause.

Time comes from the caller (``now`` in seconds, any monotonic clock), so tests use a
fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from calls.facecheck.analysis import (
    APPROVED,
    EDGE,
    UNAPPROVED,
    UNKNOWN,
    Box,
    CheckResult,
    Track,
)

# Unknown for these reasons and kept for linger_seconds: counts as unapproved.
LINGERING = (EDGE,)


@dataclass(frozen=True)
class Pause:
    box: Box
    track: Track
    checks: int
    faces: int
    lingered: bool = False  # an unclear face that stayed for linger_seconds
    lead_out_of_view: bool = False  # children's rule: nobody approved in view


@dataclass(frozen=True)
class Resume:
    clear_seconds: float
    paused_seconds: float


@dataclass
class SideDecision:
    checks_to_confirm: int = 2
    auto_resume_seconds: float = 10.0
    staff_only_resume: bool = False
    linger_seconds: float = 3.0
    exempt_faces: int = 0
    paused: bool = False
    paused_at: float | None = None
    streak: int = 0
    last_unapproved_at: float | None = None
    history: list[str] = field(default_factory=list)
    # Tracks seen unapproved in the current count (unclear sightings of them hold it).
    suspects: set[int] = field(default_factory=set)
    # Track id → when it was first seen unclear (edge / band) without a break.
    unclear_since: dict[int, float] = field(default_factory=dict)
    # Children's rule: since when exempt faces have been in view without anyone approved.
    alone_since: float | None = None

    def __post_init__(self) -> None:
        if self.checks_to_confirm < 1:
            raise ValueError("checks_to_confirm must be at least 1")
        if self.auto_resume_seconds < 0:
            raise ValueError("auto_resume_seconds cannot be negative")
        if self.exempt_faces < 0:
            raise ValueError("exempt_faces cannot be negative")

    @property
    def waiting_for_staff(self) -> bool:
        return self.paused and self.staff_only_resume

    def observe(self, now: float, result: CheckResult) -> Pause | Resume | None:
        """Feed one completed check; returns the transition it causes, if any."""
        unapproved = result.seen(UNAPPROVED)
        lingering = self._lingering(now, result)
        alone = False
        if self.exempt_faces:
            unapproved, lingering, alone = self._children_rule(now, result, unapproved, lingering)
        if unapproved or lingering:
            self.streak += 1
            self.last_unapproved_at = now
            self.suspects.update(t.id for t in unapproved)
            confirmed = self.streak >= self.checks_to_confirm or bool(lingering)
            if not self.paused and confirmed:
                self.paused = True
                self.paused_at = now
                self.history.append("pause")
                worst = max(unapproved or lingering, key=lambda t: t.distance or 0.0)
                return Pause(
                    box=worst.box,
                    track=worst,
                    checks=self.streak,
                    faces=len(result.detected),
                    lingered=not unapproved,
                    lead_out_of_view=alone,
                )
            return None
        unclear = {t.id for t in result.tracks if t.status != APPROVED}
        if self.suspects & unclear:
            # Unclear sighting (or a missed detection) of a face seen unapproved: hold.
            self.last_unapproved_at = now
            return None
        self.streak = 0
        self.suspects.clear()
        if self.paused and not self.staff_only_resume:
            assert self.paused_at is not None  # noqa: S101 - set whenever paused
            clear_since = (
                self.last_unapproved_at if self.last_unapproved_at is not None else self.paused_at
            )
            clear = now - clear_since
            if clear >= self.auto_resume_seconds:
                return self._resume(now, clear)
        return None

    def _lingering(self, now: float, result: CheckResult) -> list[Track]:
        """Unclear (cut by the edge) tracks that have stayed for ``linger_seconds``."""
        unclear = {t.id: t for t in result.tracks if t.status == UNKNOWN and t.reason in LINGERING}
        for track_id in list(self.unclear_since):
            if track_id not in unclear:
                del self.unclear_since[track_id]
        detected = set(result.detected)
        out = []
        for track_id, track in unclear.items():
            since = self.unclear_since.setdefault(track_id, now)
            if track_id in detected and now - since >= self.linger_seconds:
                out.append(track)
        return out

    def _children_rule(
        self, now: float, result: CheckResult, unapproved: list[Track], lingering: list[Track]
    ) -> tuple[list[Track], list[Track], bool]:
        """(unapproved, lingering, lead out of view) once exempt children are let be."""
        ids = {t.id for t in unapproved}
        others = len(ids) + sum(1 for t in lingering if t.id not in ids)
        if not others:
            self.alone_since = None
            return unapproved, lingering, False
        if others > self.exempt_faces:
            return unapproved, lingering, False  # more than the children on the booking
        if result.seen(APPROVED):
            self.alone_since = None
            return [], [], False  # the children, with their lead visitor in view
        if self.alone_since is None:
            self.alone_since = now
        if now - self.alone_since >= self.linger_seconds:
            return unapproved, lingering, True
        return [], [], False

    def staff_resume(self, now: float) -> Resume | None:
        """Staff ended the pause (any mode). The streak starts again from zero."""
        if not self.paused:
            return None
        clear = now - (self.last_unapproved_at or now)
        return self._resume(now, clear)

    def _resume(self, now: float, clear: float) -> Resume:
        assert self.paused_at is not None  # noqa: S101
        paused_for = now - self.paused_at
        self.paused = False
        self.paused_at = None
        self.streak = 0
        self.suspects.clear()
        self.history.append("resume")
        return Resume(clear_seconds=clear, paused_seconds=paused_for)
