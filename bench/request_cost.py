"""CPU per request of the booking pages, in this process, one request at a time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/request_cost.py [--database NAME] [--requests N] [--rounds R]

Seeds a booking rush database (bench/booking_rush.py; ``bench_bookings`` or --database)
and sends requests straight
to the ASGI application, without a server or a network, so the figures are the cost of
Django and this project alone: an anonymous 404, a signed-in 404, the booking page
(the form) and the booking page refusing a full slot. Each goes through Django's own
ASGIHandler, through purplevisits/asgi_http.py's HTTPHandler (what the service runs)
and through Django's WSGIHandler for reference. Prints the median and p95 CPU per
request (all threads of this process; PostgreSQL's own CPU is not in it) and how many
such requests one core could serve. The handlers take turns (--rounds rounds of
requests/rounds each, in a rotating order), so a host that changes speed during the run
weighs on all of them alike. It measures; it does not assert on time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.booking_rush import (  # noqa: E402
    BENCH_DB,
    CODE,
    bench_database_url,
    create_database,
    database_name,
    seed,
)
from bench.server import (  # noqa: E402
    machine_speed,
    postgres_admin_url,
    server_environment,
    signed_in_session,
)


def asgi_caller(application: Any) -> Callable[[str, str], int]:
    async def call(url: str, cookie: str) -> int:
        path, _, query = url.partition("?")
        headers = [(b"host", b"127.0.0.1")]
        if cookie:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        messages: list[dict[str, Any]] = []
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the response is made
            return {}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await application(scope, receive, send)
        return int(messages[0]["status"])

    loop = asyncio.new_event_loop()
    return lambda url, cookie: loop.run_until_complete(call(url, cookie))


def wsgi_caller(application: Any) -> Callable[[str, str], int]:
    def call(url: str, cookie: str) -> int:
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
        }
        if cookie:
            environ["HTTP_COOKIE"] = f"sessionid={cookie}"
        status: list[str] = []
        body = application(environ, lambda s, headers, exc_info=None: status.append(s))
        b"".join(body)
        body.close()
        return int(status[0][:3])

    return call


def warm_up(call: Callable[[str, str], int], requests: list[tuple[str, str]]) -> None:
    for url, cookie in requests[:20]:  # templates, URL patterns, prepared statements
        call(url, cookie)


def measure(
    call: Callable[[str, str], int], requests: list[tuple[str, str]], figures: dict[str, Any]
) -> None:
    """Time each request (CPU of the whole process, and wall) into ``figures``."""
    for url, cookie in requests:
        started_cpu, started = time.process_time(), time.perf_counter()
        figures["statuses"].add(call(url, cookie))
        figures["cpu"].append(time.process_time() - started_cpu)
        figures["wall"].append(time.perf_counter() - started)


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    cpu = sorted(figures["cpu"])
    return {
        "cpu_p50": statistics.median(cpu) * 1000,
        "cpu_p95": cpu[min(len(cpu) - 1, int(len(cpu) * 0.95))] * 1000,
        "wall_p50": statistics.median(figures["wall"]) * 1000,
        "statuses": sorted(figures["statuses"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="per case and handler")
    parser.add_argument(
        "--rounds", type=int, default=4, help="turns each handler takes per case (default 4)"
    )
    parser.add_argument(
        "--database",
        type=database_name,
        default=BENCH_DB,
        help=f"the bench database to create and fill (default {BENCH_DB})",
    )
    args = parser.parse_args()
    if not 20 <= args.requests <= 20000:
        raise SystemExit("--requests must be 20..20000")
    if not 1 <= args.rounds <= args.requests // 10:
        raise SystemExit("--rounds must be 1..requests/10")
    admin_url = postgres_admin_url(args.database)
    if admin_url is None:
        return
    create_database(admin_url, args.database)
    database_url = bench_database_url(admin_url, args.database)
    os.environ.update(server_environment(database_url, CACHE_KEY_PREFIX="request-cost"))
    os.environ["LOG_LEVEL"] = "ERROR"  # the refusals are 409s: not what is measured
    import django

    django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    from bookings.models import Booking
    from bookings.services import booking_create
    from establishments.models import Establishment
    from identity.models import Connection
    from purplevisits.asgi_http import HTTPHandler

    slot_keys, _ = seed(families=200, slots=2, terminals=5)
    establishment = Establishment.objects.get(code=CODE)
    connections = list(
        Connection.objects.filter(prisoner__establishment=establishment)
        .select_related("visitor__user", "prisoner")
        .order_by("pk")
    )
    # The second slot is full (five other prisoners); the first is free.
    from bookings.selectors import parse_slot_key

    full_slot = parse_slot_key(slot_keys[1])
    for connection in connections[-5:]:
        booking_create(
            connection=connection,
            lead=connection.visitor,
            starts_at=full_slot,  # type: ignore[arg-type]
            profile_ids=[],
            dependant_ids=[],
            aup_accepted=True,
            idempotency_key=None,
            establishment=establishment,
            actor=connection.visitor.user,
        )
    booked = set(
        Booking.objects.filter(establishment=establishment).values_list("prisoner", flat=True)
    )
    # A hundred families whose prisoner has no call yet, each signed in.
    families = [
        (c.pk, signed_in_session(c.visitor.user))
        for c in connections
        if c.prisoner_id not in booked
    ][:100]

    def pages(slot: str) -> list[tuple[str, str]]:
        return [
            (f"/visits/{CODE}/book/?" + urlencode({"connection": pk, "slot": slot}), session)
            for pk, session in (families[n % len(families)] for n in range(args.requests))
        ]

    cases = {
        "anonymous 404": [("/no-such-page/", "")] * args.requests,
        "signed-in 404": [("/no-such-page/", session) for _, session in pages(slot_keys[0])],
        "booking page (form)": pages(slot_keys[0]),
        "booking page (slot full)": pages(slot_keys[1]),
    }
    handlers = {
        "HTTPHandler (service)": asgi_caller(HTTPHandler()),
        "Django ASGIHandler": asgi_caller(ASGIHandler()),
        "Django WSGIHandler": wsgi_caller(WSGIHandler()),
    }
    print(
        f"{args.requests} requests per case and handler, one at a time, in this process, "
        f"in {args.rounds} turns per handler"
    )
    print(f"machine speed before: reference loop {machine_speed():.2f} s (lower is faster)")
    print(f"{'case':26} {'handler':22} {'CPU p50':>8} {'CPU p95':>8} {'wall p50':>9} per core")
    names = list(handlers)
    for case, requests in cases.items():
        results: dict[str, dict[str, Any]] = {
            name: {"cpu": [], "wall": [], "statuses": set()} for name in names
        }
        for name in names:
            warm_up(handlers[name], requests)
        size = len(requests) // args.rounds
        for turn in range(args.rounds):
            chunk = requests[turn * size : (turn + 1) * size]
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                measure(handlers[name], chunk, results[name])
        for name in names:
            figures = summary(results[name])
            print(
                f"{case:26} {name:22} {figures['cpu_p50']:6.2f}ms {figures['cpu_p95']:6.2f}ms "
                f"{figures['wall_p50']:7.2f}ms {1000 / figures['cpu_p50']:5.0f}/s "
                f"(HTTP {', '.join(map(str, figures['statuses']))})"
            )
    print(f"machine speed after: reference loop {machine_speed():.2f} s (lower is faster)")


if __name__ == "__main__":
    main()
