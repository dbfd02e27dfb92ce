"""bench/relay.py runs end to end (one call, two seconds) and prints its figures.

A smoke test only: the bench prints figures and never passes or fails on time, so this
checks that it starts the relay process (with face checks, as in production), carries a
call and prints the header, the machine reference and a row for N=1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CEILING = 600  # seconds: a ceiling for a loaded 2-core machine, not the expected time


@pytest.mark.slow
def test_relay_bench_runs_one_call() -> None:
    result = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "bench" / "relay.py"), "--calls", "1", "--seconds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CEILING,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "bench/relay.py: relay processes=1" in out
    assert "face checks=on" in out
    assert "machine: VP8 decode" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  1 ")]
    assert rows, out
    assert rows[0][0] == "1" and rows[0][1].endswith("%")
