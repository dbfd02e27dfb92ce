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


@pytest.mark.slow
def test_a_broken_checker_is_caught(capsys) -> None:
    summary = face_eval.main(["--quick", "--only", "strangers", "--broken"])
    out = capsys.readouterr().out
    assert "BROKEN" in out
    hits, total = summary["recall_1_5s"]
    assert total >= 10 and hits == 0
    assert summary["recall_overall"][0] == 0
