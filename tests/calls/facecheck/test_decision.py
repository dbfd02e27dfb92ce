"""The pause/resume state machine, with made-up check results and a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calls.facecheck.analysis import APPROVED, UNAPPROVED, UNKNOWN, CheckResult, Track
from calls.facecheck.decision import Pause, Resume, SideDecision

BOX = (10, 110, 110, 10)


def result(*statuses: str, missed: tuple[str, ...] = ()) -> CheckResult:
    seen = [Track(id=i + 1, box=BOX, status=s, distance=0.8) for i, s in enumerate(statuses)]
    lost = [Track(id=100 + i, box=BOX, status=s, missed=1) for i, s in enumerate(missed)]
    return CheckResult(
        tracks=tuple(seen + lost),
        next_track_id=200,
        detected=tuple(t.id for t in seen),
        encoded=(),
    )


def run(decision: SideDecision, checks: list[CheckResult], start: float = 0.0, step: float = 0.5):
    now = start
    out = []
    for check in checks:
        out.append(decision.observe(now, check))
        now += step
    return out, now


def test_an_unapproved_face_pauses_on_the_second_consecutive_check() -> None:
    decision = SideDecision()
    assert decision.observe(0.0, result(APPROVED, UNAPPROVED)) is None
    pause = decision.observe(0.5, result(APPROVED, UNAPPROVED))
    assert isinstance(pause, Pause)
    assert pause.box == BOX and pause.checks == 2 and pause.faces == 2
    assert decision.paused


def test_one_check_of_confirmation_can_be_configured() -> None:
    assert isinstance(SideDecision(checks_to_confirm=1).observe(0, result(UNAPPROVED)), Pause)
    decision = SideDecision(checks_to_confirm=3)
    out, _ = run(decision, [result(UNAPPROVED)] * 3)
    assert [type(o).__name__ for o in out] == ["NoneType", "NoneType", "Pause"]


@pytest.mark.parametrize(
    "between",
    [result(), result(APPROVED), result(UNKNOWN), result(missed=(UNAPPROVED,))],
    ids=["no face", "approved only", "unknown face", "stranger not detected"],
)
def test_a_check_without_an_unapproved_face_resets_the_count(between: CheckResult) -> None:
    decision = SideDecision()
    out, _ = run(decision, [result(UNAPPROVED), between, result(UNAPPROVED), between] * 10)
    assert all(o is None for o in out)
    assert not decision.paused


def test_no_face_at_all_never_pauses() -> None:
    decision = SideDecision()
    out, _ = run(decision, [result()] * 500)
    assert all(o is None for o in out)


def test_auto_resume_after_the_clear_time() -> None:
    decision = SideDecision(auto_resume_seconds=10)
    run(decision, [result(UNAPPROVED)] * 4)  # paused at 0.5, last seen at 1.5
    assert decision.observe(11.0, result(APPROVED)) is None  # 9.5 s clear
    resume = decision.observe(11.5, result(APPROVED))
    assert isinstance(resume, Resume)
    assert resume.clear_seconds == pytest.approx(10.0)
    assert resume.paused_seconds == pytest.approx(11.0)
    assert not decision.paused


def test_a_stranger_coming_back_restarts_the_clear_time() -> None:
    decision = SideDecision(auto_resume_seconds=10)
    run(decision, [result(UNAPPROVED)] * 2)
    assert decision.observe(8.0, result(UNAPPROVED)) is None  # still paused, seen again
    assert decision.observe(17.5, result()) is None
    assert isinstance(decision.observe(18.0, result()), Resume)


def test_staff_only_resume_never_resumes_by_itself() -> None:
    decision = SideDecision(staff_only_resume=True)
    run(decision, [result(UNAPPROVED)] * 2)
    out, now = run(decision, [result(APPROVED)] * 1000, start=1.0)
    assert all(o is None for o in out)
    assert decision.paused and decision.waiting_for_staff
    resume = decision.staff_resume(now)
    assert isinstance(resume, Resume)
    assert not decision.paused
    assert decision.staff_resume(now) is None


def test_after_a_staff_resume_a_stranger_must_be_confirmed_again() -> None:
    decision = SideDecision(staff_only_resume=True)
    run(decision, [result(UNAPPROVED)] * 2)
    decision.staff_resume(5.0)
    assert decision.observe(5.5, result(UNAPPROVED)) is None
    assert isinstance(decision.observe(6.0, result(UNAPPROVED)), Pause)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SideDecision(checks_to_confirm=0)
    with pytest.raises(ValueError):
        SideDecision(auto_resume_seconds=-1)


@given(st.lists(st.sampled_from(["none", "approved", "unknown", "unapproved"]), max_size=200))
def test_never_paused_without_two_consecutive_unapproved_checks(seq: list[str]) -> None:
    statuses = {
        "none": (),
        "approved": (APPROVED,),
        "unknown": (UNKNOWN,),
        "unapproved": (UNAPPROVED,),
    }
    decision = SideDecision()
    out, _ = run(decision, [result(*statuses[s]) for s in seq])
    confirmed = any(a == b == "unapproved" for a, b in zip(seq, seq[1:], strict=False))
    assert any(isinstance(o, Pause) for o in out) == confirmed
