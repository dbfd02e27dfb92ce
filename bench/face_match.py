"""Time of the identity verification job per ID/selfie pair, with a per-stage split.

Runs the same code as the Celery task (identity.faces.match_id_and_selfie on stored,
re-encoded JPEGs) over the face fixtures, RUNS times each, and prints p50/p95 of the
whole job and of decode, detect and encode. Prints figures only; asserts nothing.

    .venv/bin/python bench/face_match.py [RUNS]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")

import django  # noqa: E402

django.setup()

from identity.faces import Timings, match_id_and_selfie  # noqa: E402
from identity.images import clean_photo  # noqa: E402

FACES = ROOT / "tests" / "fixtures" / "faces"
PAIRS = [
    ("obama2.jpg", "obama.jpg"),
    ("obama3.jpg", "obama.jpg"),
    ("obama.jpg", "biden.jpg"),
    ("biden.jpg", "obama2.jpg"),
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    stored = {
        name: clean_photo(io.BytesIO((FACES / name).read_bytes())).read() for _, name in PAIRS
    }
    stored.update(
        {name: clean_photo(io.BytesIO((FACES / name).read_bytes())).read() for name, _ in PAIRS}
    )
    # Warm up: load dlib's models once, as a worker process would have.
    match_id_and_selfie(
        io.BytesIO(stored["obama2.jpg"]), io.BytesIO(stored["obama.jpg"]), tolerance=0.6
    )

    totals: list[float] = []
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "encode": []}
    cpu_start = time.process_time()
    for _ in range(runs):
        for id_name, selfie_name in PAIRS:
            started = time.perf_counter()
            outcome = match_id_and_selfie(
                io.BytesIO(stored[id_name]), io.BytesIO(stored[selfie_name]), tolerance=0.6
            )
            totals.append(time.perf_counter() - started)
            timings: Timings = outcome.timings
            stages["decode"].append(timings.decode)
            stages["detect"].append(timings.detect)
            stages["encode"].append(timings.encode)
    cpu = time.process_time() - cpu_start

    jobs = len(totals)
    print(f"face match job: {jobs} ID/selfie pairs ({len(PAIRS)} pairs × {runs} runs), one process")
    stages["whole job"] = totals
    for stage, values in sorted(stages.items(), key=lambda item: item[0] != "whole job"):
        print(
            f"  {stage:<11} p50 {statistics.median(values) * 1000:7.1f} ms   "
            f"p95 {percentile(values, 0.95) * 1000:7.1f} ms"
        )
    print(f"  CPU per job {cpu / jobs * 1000:7.1f} ms (process time; ≈ per-core cost)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average at end: {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
