"""Dashboard freshness: time from a pause (the ``call_pause`` service) to the officer's
dashboard socket receiving the updated tile.

An establishment with 20 live calls of the day and one officer's dashboard socket
(the real DashboardConsumer: snapshot on connect, then the pushed ``dashboard.call``
re-read from the database). Each trial pauses one call from a worker thread, as a
view or the relay would, and waits for the ``call`` message showing it paused; the
call is then resumed (not timed). Runs with the in-memory channel layer, and again
with Redis when REDIS_URL is set. Prints figures only (target p95 <= 1 s).

    .venv/bin/python bench/dashboard.py [--trials 60] [--calls 20]
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


def make_calls(count: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from calls.models import CallStatus
    from tests import factories

    establishment = factories.EstablishmentFactory()
    officer = factories.StaffMembershipFactory(establishment=establishment).user
    now = timezone.now()
    calls = [
        factories.CallFactory(
            booking__connection__prisoner__establishment=establishment,
            booking__starts_at=now - timedelta(minutes=2),
            booking__ends_at=now + timedelta(minutes=28),
            status=CallStatus.LIVE,
            started_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(minutes=29),
        )
        for _ in range(count)
    ]
    return establishment, officer, calls


async def bench(label: str, trials: int, count: int) -> None:
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from calls import services
    from calls.models import PauseReason
    from monitoring.routing import websocket_urlpatterns
    from tests import factories

    establishment, officer, calls = await sync_to_async(make_calls)(count)
    dashboard = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/staff/{establishment.code}/dashboard/"
    )
    dashboard.scope["user"] = officer
    dashboard.scope["session"] = await sync_to_async(factories.socket_session)(officer)
    connected, _ = await dashboard.connect(timeout=10)
    assert connected, "the dashboard socket was refused"
    snapshot = await dashboard.receive_json_from(timeout=10)
    assert snapshot["type"] == "snapshot" and len(snapshot["calls"]) == count

    async def wait_for(call_id: str, status: str) -> float:
        while True:
            message = await dashboard.receive_json_from(timeout=30)
            if (
                message["type"] == "call"
                and message["call"]["call"] == call_id
                and message["call"]["status"] == status
            ):
                return time.monotonic()

    latencies: list[float] = []
    for trial in range(trials):
        call = calls[trial % count]
        waiter = asyncio.ensure_future(wait_for(str(call.pk), "paused"))
        sent = time.monotonic()
        await sync_to_async(services.call_pause)(
            call_id=call.pk, reason=PauseReason.STAFF, actor=officer, detail="bench"
        )
        latencies.append(await waiter - sent)
        waiter = asyncio.ensure_future(wait_for(str(call.pk), "live"))
        await sync_to_async(services.call_resume)(call_id=call.pk, actor=officer)
        await waiter
    await dashboard.disconnect()
    print(
        f"{label}: pause → dashboard tile ({len(latencies)} trials, {count} live calls): "
        f"p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms (target p95 <= 1000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    trials = max(1, min(args.trials, 1000))
    count = max(1, min(args.calls, 200))
    redis_url = os.environ.pop("REDIS_URL", "")  # the database/cache stay embedded
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        call_command("migrate", verbosity=0)
    else:
        sys.exit("bench/dashboard.py uses a throw-away SQLite database: unset DATABASE_URL")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    layers = [("in-memory layer", {"BACKEND": "channels.layers.InMemoryChannelLayer"})]
    if redis_url:
        layers.append(
            (
                "Redis layer",
                {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [redis_url], "prefix": "pv-bench-dashboard"},
                },
            )
        )
    else:
        print("REDIS_URL is not set: in-memory layer only")
    for label, layer in layers:
        with override_settings(CHANNEL_LAYERS={"default": layer}):
            asyncio.run(bench(label, trials, count))


if __name__ == "__main__":
    main()
