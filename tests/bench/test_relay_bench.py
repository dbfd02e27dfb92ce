"""bench/relay.py runs end to end (one call, two seconds) and prints its figures.

A smoke test only: the bench prints figures and never passes or fails on time, so this
checks that it starts the relay process (with face checks, as in production) and a peer
process, carries a call whose frames arrive, and prints the header, the machine
reference, the clip, and a row for N=1 with every CPU column.
"""

from __future__ import annotations

import re
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
    assert "bench/relay.py: relay processes=1 peer processes=1" in out
    assert "face checks=on" in out
    assert "machine: VP8 decode" in out
    assert "clip per side: 150 VP8 frames" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("N CPU/call"))
    for column in ("relay", "face", "all", "peers", "calls/proc", "calls/core", "peers CPU"):
        assert column in header, header
    rows = [line.split() for line in out.splitlines() if line.startswith("  1 ")]
    assert rows, out
    row = rows[0]
    # N, then CPU per call: relay, face, all, peers, each a % of one core.
    assert row[0] == "1"
    assert all(value.endswith("%") for value in row[1:5]), row
    cpu = [float(value.rstrip("%")) for value in row[1:5]]
    assert cpu[0] > 0, "the relay process used no CPU: it carried nothing"
    assert cpu[1] > 0, "face checks are on: the face workers must have worked"
    assert cpu[3] > 0, "the peer process used no CPU"
    delivered = float(row[8].rstrip("%"))
    assert delivered > 0, out
    peers_cpu = row[13]
    assert peers_cpu.endswith("%"), row
    detail = re.search(r"(\d+) live video frames received", out)
    assert detail and int(detail.group(1)) > 0, out
    assert re.search(r"relay \d+, face workers \d+(\+\d+)*, peers \d+, bench \d+", out), out
