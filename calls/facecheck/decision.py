"""When to pause and when to resume one video stream: a small state machine, no I/O.

Rules (DOMAIN.md, "Calls"):

- an unapproved face seen in ``checks_to_confirm`` consecutive checks pauses the stream;
- any check without an unapproved face resets that count (no face at all, approved
  faces only, or faces too poor to judge — a family is never paused on doubt);
- a failed check (worker crash, bad frame) neither counts nor resets;
- once paused, the stream resumes by itself after ``auto_resume_seconds`` of checks
  without an unapproved face, unless ``staff_only_resume``: then only
  :meth:`SideDecision.staff_resume` ends the pause.

Time comes from the caller (``now`` in seconds, any monotonic clock), so tests use a
fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from calls.facecheck.analysis import UNAPPROVED, Box, CheckResult, Track


@dataclass(frozen=True)
class Pause:
    box: Box
    track: Track
    checks: int
    faces: int


@dataclass(frozen=True)
class Resume:
    clear_seconds: float
    paused_seconds: float


@dataclass
class SideDecision:
    checks_to_confirm: int = 2
    auto_resume_seconds: float = 10.0
    staff_only_resume: bool = False
    paused: bool = False
    paused_at: float | None = None
    streak: int = 0
    last_unapproved_at: float | None = None
    history: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.checks_to_confirm < 1:
            raise ValueError("checks_to_confirm must be at least 1")
        if self.auto_resume_seconds < 0:
            raise ValueError("auto_resume_seconds cannot be negative")

    @property
    def waiting_for_staff(self) -> bool:
        return self.paused and self.staff_only_resume

    def observe(self, now: float, result: CheckResult) -> Pause | Resume | None:
        """Feed one completed check; returns the transition it causes, if any."""
        unapproved = result.seen(UNAPPROVED)
        if unapproved:
            self.streak += 1
            self.last_unapproved_at = now
            if not self.paused and self.streak >= self.checks_to_confirm:
                self.paused = True
                self.paused_at = now
                self.history.append("pause")
                worst = max(unapproved, key=lambda t: t.distance or 0.0)
                return Pause(
                    box=worst.box,
                    track=worst,
                    checks=self.streak,
                    faces=len(result.detected),
                )
            return None
        self.streak = 0
        if self.paused and not self.staff_only_resume:
            assert self.paused_at is not None  # noqa: S101 - set whenever paused
            clear_since = (
                self.last_unapproved_at if self.last_unapproved_at is not None else self.paused_at
            )
            clear = now - clear_since
            if clear >= self.auto_resume_seconds:
                return self._resume(now, clear)
        return None

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
        self.history.append("resume")
        return Resume(clear_seconds=clear, paused_seconds=paused_for)
