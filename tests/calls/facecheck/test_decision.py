"""The pause/resume state machine, with made-up check results and a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calls.facecheck.analysis import (
    APPROVED,
    BAND,
    EDGE,
    UNAPPROVED,
    UNKNOWN,
    WEAK,
    CheckResult,
    Track,
)
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
    [result(), result(APPROVED), result(APPROVED, UNKNOWN), result(missed=(UNAPPROVED,))],
    ids=["no face", "approved only", "another face unknown", "another track not detected"],
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
    # An unknown sighting of the same track (id 1) between two unapproved ones holds
    # the count (issue 16); anything else between them resets it.
    held = [s for s in seq if s != "unknown"]
    confirmed = any(a == b == "unapproved" for a, b in zip(held, held[1:], strict=False))
    assert any(isinstance(o, Pause) for o in out) == confirmed


def unclear(reason: str, track_id: int = 1) -> CheckResult:
    track = Track(id=track_id, box=BOX, status=UNKNOWN, reason=reason)
    return CheckResult(tracks=(track,), next_track_id=200, detected=(track_id,), encoded=())


@pytest.mark.parametrize(
    "between",
    [result(UNKNOWN), result(missed=()), unclear(WEAK)],
    ids=["same face unknown", "same face not detected", "same face weak"],
)
def test_an_unclear_check_of_the_same_face_holds_the_count(between: CheckResult) -> None:
    decision = SideDecision()
    missed = CheckResult(
        tracks=(Track(id=1, box=BOX, status=UNAPPROVED, missed=1),),
        next_track_id=200,
        detected=(),
        encoded=(),
    )
    if not between.tracks:
        between = missed
    out, _ = run(decision, [result(UNAPPROVED), between, between, result(UNAPPROVED)])
    assert out[:3] == [None, None, None]
    assert isinstance(out[3], Pause) and out[3].checks == 2


def test_a_face_cut_by_the_edge_for_three_seconds_pauses() -> None:
    decision = SideDecision(linger_seconds=3.0)
    out, _ = run(decision, [unclear(EDGE)] * 8)  # 0.5 s apart
    assert out[:6] == [None] * 6  # up to 2.5 s
    assert isinstance(out[6], Pause) and out[6].lingered  # at 3.0 s


@pytest.mark.parametrize("reason", [WEAK, BAND])
def test_weak_detections_and_near_misses_never_pause_however_long(reason: str) -> None:
    decision = SideDecision(linger_seconds=3.0)
    out, _ = run(decision, [unclear(reason)] * 200)
    assert all(o is None for o in out)


def test_an_unclear_face_that_goes_away_starts_its_time_again() -> None:
    decision = SideDecision(linger_seconds=3.0)
    out, _ = run(decision, ([unclear(EDGE)] * 5 + [result()]) * 10)
    assert all(o is None for o in out)


def test_the_childrens_rule_in_the_state_machine() -> None:
    decision = SideDecision(exempt_faces=1, linger_seconds=3.0)
    out, now = run(decision, [result(APPROVED, UNAPPROVED)] * 20)
    assert all(o is None for o in out)  # the child, with the lead visitor
    out, now = run(decision, [result(UNAPPROVED)] * 8, start=now)  # alone
    assert out[:6] == [None] * 6
    assert any(isinstance(o, Pause) and o.lead_out_of_view for o in out)
    crowd = SideDecision(exempt_faces=1)
    out, _ = run(crowd, [result(APPROVED, UNAPPROVED, UNAPPROVED)] * 2)
    assert isinstance(out[1], Pause)
    with pytest.raises(ValueError):
        SideDecision(exempt_faces=-1)
