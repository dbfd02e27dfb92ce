"""Booking rush: many families try to book the same few slots at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/booking_rush.py

Creates (and migrates) a dedicated database (``bench_bookings``, or --database NAME)
next to DATABASE_URL's,
loads one live establishment with --slots slots on one day and --terminals terminals,
--families approved families (most with their own prisoner, some sharing one, as
partners and parents do), starts daphne on 127.0.0.1 (or uses --url, a server already
running on that database), and lets every family try to book through the real pages:
GET the booking page (CSRF cookie, idempotency key), POST it, and on "slot full" try
another slot, at most --attempts times. At most --concurrency requests are in flight.

Prints confirmed bookings, refusals by rule, violations (double-booked terminals,
prisoners over the allowance: must be 0), p50/p95 latency and requests per second.
It measures; it does not assert on time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import (  # noqa: E402
    add_processes_argument,
    loopback_redis_url,
    machine_speed,
    postgres_admin_url,
    postgres_cpu_seconds,
    process_cpu_seconds,
    server_environment,
    signed_in_session,
    start_celery_worker,
    start_daphne,
)

BENCH_DB = "bench_bookings"
CODE = "bench-rush"


def database_name(value: str) -> str:
    """--database: a plain PostgreSQL name (it is quoted into CREATE DATABASE)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise argparse.ArgumentTypeError(
            "a database name is lower-case letters, digits and _ (at most 63)"
        )
    return value


def bench_database_url(url: str, name: str | None = None) -> str:
    # BENCH_DB read when called: bench/faults.py points it at a database of its own.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + (name or BENCH_DB)))


def create_database(admin_url: str, name: str | None = None) -> None:
    name = name or BENCH_DB
    import psycopg

    parts = urlsplit(admin_url)
    with psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def seed(families: int, slots: int, terminals: int) -> tuple[list[str], list[tuple[str, int]]]:
    """Fresh data; returns slot keys and (session cookie, connection id) per family."""
    from datetime import date, timedelta
    from datetime import time as dtime

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from bookings.models import Booking, BookingVisitor
    from bookings.selectors import slots_between
    from establishments.models import (
        Establishment,
        Prisoner,
        RolloutStage,
        Terminal,
        VisitSession,
    )
    from identity.models import Connection, VisitorProfile

    call_command("migrate", verbosity=0)
    BookingVisitor.objects.all().delete()
    Booking.objects.all().delete()
    Connection.objects.all().delete()
    VisitorProfile.objects.all().delete()
    User.objects.filter(username__startswith="rush").delete()
    Prisoner.objects.filter(establishment__code=CODE).delete()
    Establishment.objects.filter(code=CODE).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_session")

    establishment = Establishment.objects.create(
        code=CODE,
        name="HMP Bench Rush",
        kind="male",
        rollout_stage=RolloutStage.LIVE,
        max_days_ahead=28,
        min_notice_days=2,
    )
    Terminal.objects.bulk_create(
        [Terminal(establishment=establishment, name=f"Laptop {n + 1}") for n in range(terminals)]
    )
    day = timezone.localdate() + timedelta(days=3)
    step = establishment.slot_step_minutes
    end_minutes = 8 * 60 + (slots - 1) * step + establishment.call_minutes
    VisitSession.objects.create(
        establishment=establishment,
        weekday=day.weekday(),
        start_time=dtime(8, 0),
        end_time=dtime(end_minutes // 60, end_minutes % 60),
        valid_from=day,
        valid_to=day,
    )
    slot_keys = [s.key for s in slots_between(establishment, day, day)]
    assert len(slot_keys) == slots, slot_keys

    # About one prisoner in five has two families calling (a partner and a parent).
    prisoner_count = families - families // 5
    prisoners = Prisoner.objects.bulk_create(
        [
            Prisoner(
                prison_number=f"B{n:04d}{chr(65 + n // 10000)}Z",
                first_name="Pat",
                last_name=f"Rush{n}",
                date_of_birth=date(1980, 1, 1),
                establishment=establishment,
            )
            for n in range(prisoner_count)
        ]
    )
    users = User.objects.bulk_create(
        [User(username=f"rush{n}@bench.test", email=f"rush{n}@bench.test") for n in range(families)]
    )
    profiles = VisitorProfile.objects.bulk_create(
        [
            VisitorProfile(
                user=u,
                legal_name=f"Family {n}",
                date_of_birth=date(1985, 1, 1),
                phone="07700900000",
                country_of_residence="GB",
                verification_status="approved",
                biometric_consent=True,
            )
            for n, u in enumerate(users)
        ]
    )
    connections_ = Connection.objects.bulk_create(
        [
            Connection(
                visitor=p,
                prisoner=prisoners[n % prisoner_count],
                relationship="partner",
                status="approved",
            )
            for n, p in enumerate(profiles)
        ]
    )
    sessions = [
        (signed_in_session(user), conn.pk) for user, conn in zip(users, connections_, strict=True)
    ]
    if connection.vendor == "postgresql":
        # Each run deletes and re-creates every row: without this the tables fill with
        # dead rows and every run is a little slower than the last.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return slot_keys, sessions


def violations() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM bookings_booking a JOIN bookings_booking b
               ON a.terminal_id = b.terminal_id AND a.id < b.id
               AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
               WHERE a.status IN ('requested','confirmed')
                 AND b.status IN ('requested','confirmed')"""
        )
        double_booked = cursor.fetchone()[0]
        cursor.execute(
            """SELECT count(*) FROM (SELECT b.prisoner_id FROM bookings_booking b
               JOIN establishments_establishment e ON e.id = b.establishment_id
               WHERE b.status IN ('requested','confirmed','completed','no_show','terminated')
               GROUP BY b.prisoner_id, b.allowance_month, e.calls_per_month
               HAVING count(*) > e.calls_per_month) x"""
        )
        over_allowance = cursor.fetchone()[0]
    return {"double_booked_terminals": double_booked, "prisoners_over_allowance": over_allowance}


def start_server(
    database_url: str, port: int, redis_url: str | None = None
) -> subprocess.Popen[bytes]:
    return start_daphne(rush_environment(database_url, redis_url), port)


def rush_environment(database_url: str, redis_url: str | None) -> dict[str, str]:
    return server_environment(database_url, redis_url=redis_url, CACHE_KEY_PREFIX="rush")


KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Client:
    def __init__(self, host: str, port: int, session: str) -> None:
        self.host, self.port = host, port
        self.cookies = {"sessionid": session}
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str, float]:
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Host": f"{self.host}:{self.port}",
        }
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://{self.host}:{self.port}{path}"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        elapsed = time.perf_counter() - started
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, text, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", help="a running server on the bench database (else one is started)"
    )
    parser.add_argument("--port", type=int, default=8120)
    parser.add_argument("--families", type=int, default=500)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--terminals", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument(
        "--database",
        type=database_name,
        default=BENCH_DB,
        help=f"the bench database to create and fill (default {BENCH_DB})",
    )
    add_processes_argument(parser)
    args = parser.parse_args()
    admin_url = postgres_admin_url(args.database)
    if admin_url is None:
        return
    if not 1 <= args.concurrency <= 500 or not 1 <= args.families <= 5000:
        raise SystemExit("--concurrency must be 1..500 and --families 1..5000")
    database_url = bench_database_url(admin_url, args.database)
    redis_url = loopback_redis_url()
    create_database(admin_url, args.database)
    setup_django(database_url)
    t0 = time.perf_counter()
    slot_keys, families = seed(args.families, args.slots, args.terminals)
    print(
        f"seeded {len(families)} families, {len(slot_keys)} slots x {args.terminals} terminals "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    servers: list[subprocess.Popen[bytes]] = []
    workers: list[subprocess.Popen[bytes]] = []
    ports: list[int]
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("--url must be on loopback")
        ports = [port]
    else:
        host = "127.0.0.1"
        ports = [args.port + n for n in range(args.processes)]
        servers = [start_server(database_url, p, redis_url) for p in ports]
        if redis_url:
            # Production's topology: the booking emails go through Redis to a worker.
            workers.append(start_celery_worker(rush_environment(database_url, redis_url)))

    latencies: dict[str, list[float]] = {"GET": [], "POST": []}
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    full: set[str] = set()
    book_path = f"/visits/{CODE}/book/"

    def family(session_and_connection: tuple[str, int]) -> None:
        session, connection_id = session_and_connection
        client = Client(host, ports[connection_id % len(ports)], session)
        rng = random.Random(connection_id)
        result = "NO_SLOT_LEFT"
        try:
            for _ in range(args.attempts):
                choices = [k for k in slot_keys if k not in full] or slot_keys
                slot = rng.choice(choices)
                query = urlencode({"connection": connection_id, "slot": slot})
                status, text, elapsed = client.request("GET", f"{book_path}?{query}")
                with lock:
                    latencies["GET"].append(elapsed)
                key, csrf = KEY_RE.search(text), CSRF_RE.search(text)
                if status != 200 or not key or not csrf:
                    code = re.search(r'data-code="([A-Z_]+)"', text)
                    result = code.group(1) if code else f"GET {status}"
                    if result == "SLOT_FULL":
                        with lock:
                            full.add(slot)
                        continue
                    break
                body = urlencode(
                    {
                        "csrfmiddlewaretoken": csrf.group(1),
                        "connection": connection_id,
                        "slot": slot,
                        "aup": "on",
                        "idempotency_key": key.group(1),
                    }
                )
                status, text, elapsed = client.request("POST", book_path, body)
                with lock:
                    latencies["POST"].append(elapsed)
                if status == 302:
                    result = "confirmed"
                    break
                code = re.search(r'data-code="([A-Z_]+)"', text)
                result = code.group(1) if code else f"POST {status}"
                if result == "SLOT_FULL":
                    with lock:
                        full.add(slot)
                    continue
                break
        except OSError as exc:
            result = f"error {type(exc).__name__}"
        with lock:
            outcomes[result] = outcomes.get(result, 0) + 1

    started = time.perf_counter()
    client_cpu = time.process_time()
    server_cpu = sum(process_cpu_seconds(server.pid) for server in servers)
    worker_cpu = sum(process_cpu_seconds(worker.pid) for worker in workers)
    database_cpu = postgres_cpu_seconds()
    try:
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(family, families))
    finally:
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        server_cpu = sum(process_cpu_seconds(server.pid) for server in servers) - server_cpu
        database_cpu = postgres_cpu_seconds() - database_cpu
        if workers:
            time.sleep(2)  # let the worker finish the last emails
        worker_cpu = sum(process_cpu_seconds(worker.pid) for worker in workers) - worker_cpu
        for process in [*servers, *workers]:
            process.terminate()
            process.wait(10)

    from bookings.models import Booking

    confirmed = Booking.objects.filter(establishment__code=CODE, status="confirmed").count()
    requests_made = len(latencies["GET"]) + len(latencies["POST"])
    print(
        f"families: {len(families)}, concurrency: {args.concurrency}, "
        f"web processes: {len(ports)}, places: {len(slot_keys) * args.terminals}; emails: "
        + ("a Celery worker through Redis" if workers else "in the request (no REDIS_URL)")
    )
    print(f"confirmed bookings: {confirmed}")
    print("outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    print("violations: " + ", ".join(f"{k}={v}" for k, v in violations().items()))
    for method, values in [*latencies.items(), ("all", latencies["GET"] + latencies["POST"])]:
        if values:
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
            print(
                f"{method}: n={len(values)} p50={statistics.median(values) * 1000:.0f} ms "
                f"p95={p95 * 1000:.0f} ms"
            )
    print(f"requests: {requests_made} in {wall:.1f} s = {requests_made / wall:.0f} requests/s")
    print(f"machine speed: reference loop {machine_speed():.2f} s (lower is faster)")
    if servers and requests_made:
        print(
            f"CPU per request: web {server_cpu / requests_made * 1000:.1f} ms, "
            f"this client {client_cpu / requests_made * 1000:.1f} ms"
            + (f", worker {worker_cpu / requests_made * 1000:.1f} ms" if workers else "")
            + (f", PostgreSQL {database_cpu / requests_made * 1000:.1f} ms" if database_cpu else "")
            + f" (web processes used {server_cpu / wall:.2f} cores of {os.cpu_count()})"
        )


if __name__ == "__main__":
    main()
