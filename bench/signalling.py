"""Signalling under load: 200 connected sockets (100 calls × family and prisoner).

Runs the real consumer (authorisation, per-message permission re-check, channel-layer
groups) in this process against a throw-away SQLite database and the channel layer of
the settings (in-memory, or Redis when REDIS_URL is set). Prints the p50/p95 latency of:

- a request answered by the server (an unknown type → ``error``), sent from every
  socket at once, several rounds;
- a state change pushed to both sockets of a call (``call.state`` after a pause).

    .venv/bin/python bench/signalling.py [--sockets 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="pv-bench-"))
os.environ.setdefault("TESTING", "true")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def bench(sockets: int, rounds: int) -> None:
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from calls import services
    from calls.routing import websocket_urlpatterns
    from tests import factories
    from tests.calls.conftest import make_setup

    app = URLRouter(websocket_urlpatterns)
    calls = []
    for _ in range(sockets // 2):
        setup = await sync_to_async(make_setup)()
        call = await sync_to_async(services.call_open)(booking=setup.booking)
        calls.append((call, setup))

    connected: list[tuple[str, WebsocketCommunicator]] = []
    started = time.monotonic()
    for call, setup in calls:
        for user in (setup.family, setup.terminal_user):
            communicator = WebsocketCommunicator(app, f"/ws/calls/{call.pk}/")
            communicator.scope["user"] = user
            communicator.scope["session"] = await sync_to_async(factories.socket_session)(user)
            ok, _ = await communicator.connect(timeout=10)
            assert ok
            await communicator.receive_json_from(timeout=10)  # first state
            connected.append((str(call.pk), communicator))
    print(f"{len(connected)} sockets connected in {time.monotonic() - started:.1f} s")

    async def drain(communicator: WebsocketCommunicator) -> None:
        while not await communicator.receive_nothing(timeout=0.05):
            await communicator.receive_output(timeout=1)

    await asyncio.gather(*(drain(c) for _, c in connected))

    async def round_trip(communicator: WebsocketCommunicator) -> float:
        sent = time.monotonic()
        await communicator.send_json_to({"type": "bench-unknown"})
        while True:
            message = await communicator.receive_json_from(timeout=30)
            if message["type"] == "error":
                return time.monotonic() - sent

    latencies: list[float] = []
    for _ in range(rounds):
        latencies += await asyncio.gather(*(round_trip(c) for _, c in connected))
        await asyncio.sleep(0.3)  # stay under the per-socket rate limit
    print(
        f"request → answer ({len(latencies)} messages, all sockets at once): "
        f"p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms"
    )

    async def wait_state(communicator: WebsocketCommunicator, status: str) -> float:
        while True:
            message = await communicator.receive_json_from(timeout=30)
            if message["type"] == "state" and message["status"] == status:
                return time.monotonic()

    pushes: list[float] = []
    for call, _setup in calls[: min(len(calls), 50)]:
        members = [c for cid, c in connected if cid == str(call.pk)]
        sent = time.monotonic()
        waiters = [asyncio.ensure_future(wait_state(c, "paused")) for c in members]
        await sync_to_async(services.call_pause)(call_id=call.pk, reason="unapproved_face")
        pushes += [t - sent for t in await asyncio.gather(*waiters)]
    print(
        f"state change → every socket of the call ({len(pushes)} deliveries): "
        f"p50 {pct(pushes, 0.5):.1f} ms, p95 {pct(pushes, 0.95):.1f} ms (target p95 <= 50 ms)"
    )
    for _, communicator in connected:
        await communicator.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        call_command("migrate", verbosity=0)
    else:
        sys.exit("bench/signalling.py uses a throw-away SQLite database: unset DATABASE_URL")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    asyncio.run(bench(args.sockets, args.rounds))


if __name__ == "__main__":
    main()
