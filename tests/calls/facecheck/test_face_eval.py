"""bench/face_eval.py --quick: the figures have their shape, and a broken checker shows."""

from __future__ import annotations

import pytest

from bench import face_eval


@pytest.mark.slow
def test_the_quick_evaluation_prints_every_figure(capsys) -> None:
    summary = face_eval.main(["--quick"])
    out = capsys.readouterr().out
    for heading in (
        "paused within 1.5 s",
        "caught at all",
        "time to pause",
        "false pauses (approved people only)",
        "call-hours",
        "wrong resumes",
        "CPU per check",
        "machine:",
        "partly visible, lingering",
    ):
        assert heading in out, heading
    hits, total = summary["recall_1_5s"]
    assert total >= 10
    assert hits >= 0.8 * total, out  # today's checker catches these
    assert summary["call_hours"] > 0.03
    assert summary["false_pauses"] == 0, out
    assert summary["cpu_by"] and summary["checks"] > 100
    assert summary["pause_p95"] <= 1.5
    assert all(after is not None for _key, after in summary["linger"]), out
    # The machine reference includes what the checks' cost scales with: dlib itself.
    machine = summary["machine"]
    assert 0 < machine["hog_800_ms"] < 5000 and 0 < machine["encoding_ms"] < 5000
    assert f"HOG at 800 px {machine['hog_800_ms']} ms" in out


@pytest.mark.slow
def test_a_broken_checker_is_caught(capsys) -> None:
    summary = face_eval.main(["--quick", "--only", "strangers", "--broken"])
    out = capsys.readouterr().out
    assert "BROKEN" in out
    hits, total = summary["recall_1_5s"]
    assert total >= 10 and hits == 0
    assert summary["recall_overall"][0] == 0


def test_a_visitor_is_enrolled_from_their_selfie_and_another_photo_as_id() -> None:
    """The ID photo is another photo of the same person, never the one the call shows."""
    assert face_eval.id_photo("obama.jpg", "obama2.jpg") == "obama3.jpg"
    assert face_eval.id_photo("obama3.jpg", "obama2.jpg") == "obama.jpg"
    assert face_eval.id_photo("hopper.jpg", "hopper.jpg") is None


@pytest.mark.slow
def test_visitor_enrolment_keeps_the_matching_id_photo_and_precall_frames() -> None:
    import numpy as np

    from identity import faces

    kept = face_eval.visitor_enrolment("obama3.jpg", "obama2.jpg")
    assert len(kept) == 2  # selfie + photo ID (obama3 and obama match)
    assert faces.face_distance(kept[0], kept[1]) < 0.6
    # One person: the selfie only.
    assert len(face_eval.visitor_enrolment("biden.jpg", "biden.jpg")) == 1

    scenario = face_eval.fair_scenarios(True, 0.1, seed=1)[4]  # obama3 enrolled, obama2 shown
    assert scenario.enrolled == ("obama3.jpg",)
    photo, _ = face_eval.approved_encodings(scenario, "photo")
    visitor, _ = face_eval.approved_encodings(scenario, "visitor")
    precall, what = face_eval.approved_encodings(scenario, "precall")
    assert (len(photo), len(visitor)) == (1, 2)
    assert what == "kept" and len(precall) == 3, what
    # The pre-call encoding is of the person the call shows: nearer to a frame of the
    # call than the selfie is.
    shown = face_eval.enrolment("obama2.jpg")
    assert np.linalg.norm(precall[2] - shown) < np.linalg.norm(visitor[0] - shown)


@pytest.mark.slow
def test_pre_call_frames_of_a_stranger_are_not_kept() -> None:
    """The service's own rule: a stranger at the camera check cannot enrol."""
    scenario = face_eval.fair_scenarios(True, 0.05, seed=1)[0]  # collins
    scenario.actors[0].name = "biden.jpg"  # someone else sits at the camera check
    encodings, what = face_eval.approved_encodings(scenario, "precall")
    assert what == "not kept: a face that is not the selfie's"
    assert len(encodings) == 1
