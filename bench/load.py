"""Load: 200 families browse the portal and book at the same time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/load.py

Creates (and migrates) a dedicated database ``bench_load`` next to DATABASE_URL's,
seeds --users approved families with bench/booking_rush.py's helpers (one live
establishment, --slots slots x --terminals laptops three days ahead), starts daphne on
127.0.0.1:--port, and runs --users concurrent clients (one thread and one keep-alive
connection each, stdlib http.client, loopback only). Each client does --rounds rounds of
the family's pages (home, my visits, the establishment's portal, my account) and then
books once (the booking page, then the POST). Every loop is bounded.

Prints per page: requests, p50 and p95 latency, errors (status >= 500 or a failed
connection); then the error rate and requests per second. It measures; it does not
assert on time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import booking_rush  # noqa: E402
from bench.server import (  # noqa: E402
    add_processes_argument,
    postgres_admin_url,
    server_environment,
    start_daphne,
)

BENCH_DB = "bench_load"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def start_server(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """daphne on loopback, its log (JSON lines, WARNING and up) kept in ``log``."""
    return start_daphne(server_environment(database_url), port, log=log)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8160)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--terminals", type=int, default=11)
    add_processes_argument(parser)
    args = parser.parse_args()
    admin_url = postgres_admin_url(BENCH_DB)
    if admin_url is None:
        return
    if not 1 <= args.users <= 1000 or not 1 <= args.rounds <= 20:
        raise SystemExit("--users must be 1..1000 and --rounds 1..20")
    booking_rush.BENCH_DB = BENCH_DB  # the rush's helpers, on our own database
    database_url = booking_rush.bench_database_url(admin_url)
    booking_rush.create_database(admin_url)
    booking_rush.setup_django(database_url)
    t0 = time.perf_counter()
    slot_keys, families = booking_rush.seed(args.users, args.slots, args.terminals)
    print(f"seeded {len(families)} families on {BENCH_DB} in {time.perf_counter() - t0:.1f} s")
    ports = [args.port + n for n in range(args.processes)]
    servers = [
        start_server(database_url, port, ROOT / "var" / f"bench_load_server_{port}.log")
        for port in ports
    ]
    code = booking_rush.CODE
    pages = {
        "home": "/",
        "my visits": "/visits/",
        "portal": f"/visits/{code}/",
        "my account": "/me/",
    }
    latencies: dict[str, list[float]] = {name: [] for name in [*pages, "book GET", "book POST"]}
    errors: dict[str, int] = dict.fromkeys(latencies, 0)
    booked = 0
    lock = threading.Lock()

    def record(name: str, status: int, elapsed: float) -> None:
        with lock:
            latencies[name].append(elapsed)
            if status >= 500:
                errors[name] += 1

    def user(session_and_connection: tuple[str, int]) -> None:
        nonlocal booked
        session, connection_id = session_and_connection
        client = booking_rush.Client("127.0.0.1", ports[connection_id % len(ports)], session)
        rng = random.Random(connection_id)
        name = "home"
        try:
            for _ in range(args.rounds):
                for name, path in pages.items():
                    status, _, elapsed = client.request("GET", path)
                    record(name, status, elapsed)
            name = "book GET"
            slot = rng.choice(slot_keys)
            query = urlencode({"connection": connection_id, "slot": slot})
            status, text, elapsed = client.request("GET", f"/visits/{code}/book/?{query}")
            record(name, status, elapsed)
            key = booking_rush.KEY_RE.search(text)
            csrf = booking_rush.CSRF_RE.search(text)
            if status == 200 and key and csrf:
                name = "book POST"
                body = urlencode(
                    {
                        "csrfmiddlewaretoken": csrf.group(1),
                        "connection": connection_id,
                        "slot": slot,
                        "aup": "on",
                        "idempotency_key": key.group(1),
                    }
                )
                status, _, elapsed = client.request("POST", f"/visits/{code}/book/", body)
                record(name, status, elapsed)
                if status == 302:
                    with lock:
                        booked += 1
        except OSError:
            with lock:
                errors[name] += 1

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=args.users) as pool:
            list(pool.map(user, families))
    finally:
        wall = time.perf_counter() - started
        for server in servers:
            server.terminate()
            server.wait(10)

    total = sum(len(v) for v in latencies.values())
    failed = sum(errors.values())
    print(
        f"{args.users} concurrent users, {args.rounds} rounds of pages, then one booking each; "
        f"{len(ports)} web processes"
    )
    for name, values in latencies.items():
        if values:
            print(
                f"{name:10s} n={len(values):5d} p50={statistics.median(values) * 1000:6.0f} ms "
                f"p95={percentile(values, 0.95) * 1000:6.0f} ms errors={errors[name]}"
            )
    print(f"bookings confirmed: {booked} (places: {len(slot_keys) * args.terminals})")
    print("violations: " + ", ".join(f"{k}={v}" for k, v in booking_rush.violations().items()))
    print(
        f"requests: {total} in {wall:.1f} s = {total / wall:.0f} requests/s, "
        f"error rate {failed / max(1, total + failed) * 100:.2f} %"
    )


if __name__ == "__main__":
    main()
