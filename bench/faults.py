"""Fault drills: what happens when PostgreSQL, Redis, a Celery worker, a browser or a
relay process fails, with the measured figures.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python bench/faults.py heartbeat celery relay   # harmless to others
    ... bench/faults.py postgres redis    # restarts the shared services: run with care

Each drill works on its own database ``bench_faults`` (created and migrated next to
DATABASE_URL's, flushed and seeded with the security tests' world), starts what it
needs on 127.0.0.1 (daphne on --port, celery workers, runrelay), prints what happened
and its figures, and stops everything it started. Every wait is bounded.

- postgres: PostgreSQL restarted while /healthz and a page are polled every 100 ms:
  which statuses, any stack trace in a body, seconds until both answer 200 again.
- redis: Redis shut down and restarted while a dashboard websocket is open; the
  client reconnects with dashboard.js's back-off (0.5 s doubling): seconds until
  /healthz is 200 again, until the socket is open again, and whether a group push
  reaches the reopened socket (the dashboard rejoined its group).
- celery: a worker (-P solo) SIGKILLed while it runs a face match (acks_late), a new
  worker started: does the check's result get recorded, how many runs, after how long.
- heartbeat: a family's call socket that goes silent (no heartbeat, TCP left open):
  seconds until the server closes it (4408).
- relay: two `manage.py runrelay` processes; a call pinned to one; that one SIGKILLed:
  seconds until the call is pinned to the other one, and the call's start time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import booking_rush  # noqa: E402
from bench.server import server_environment, signed_in_session, start_daphne  # noqa: E402

BENCH_DB = "bench_faults"
DRILLS = ("heartbeat", "celery", "relay", "postgres", "redis")
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
MEDIA = tempfile.mkdtemp(prefix="faults-media-")


# --- set-up --------------------------------------------------------------------------------


def environment(database_url: str, redis_url: str | None) -> dict[str, str]:
    return server_environment(
        database_url, redis_url=redis_url, PRIVATE_MEDIA_ROOT=MEDIA, CACHE_KEY_PREFIX="faults"
    )


def seed() -> Any:
    from django.core.management import call_command

    from tests.security.world import build_world

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    return build_world()


def session_for(user: Any) -> str:
    return signed_in_session(user)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def get(port: int, path: str, cookie: str = "") -> tuple[int, str]:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, type(exc).__name__


# --- a minimal websocket client (stdlib only) ----------------------------------------------


class Socket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str, session: str) -> Socket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: sessionid={session}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            writer.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        mask = os.urandom(4)
        length = len(data)
        head = bytes([0x81])
        if length < 126:
            head += bytes([0x80 | length])
        elif length < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(head + mask + masked)
        await self.writer.drain()

    async def receive(self, timeout: float) -> tuple[str, Any]:
        """("text", message) or ("close", code); raises TimeoutError or ConnectionError."""
        first = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        opcode, length = first[0] & 0x0F, first[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        payload = await self.reader.readexactly(length)
        if opcode == 8:
            return "close", struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        if opcode == 1:
            return "text", json.loads(payload)
        return "other", opcode

    def close(self) -> None:
        self.writer.close()


# --- drills --------------------------------------------------------------------------------


def drill_heartbeat(env: dict[str, str], port: int, world: Any) -> None:
    from calls import services as call_services

    call = call_services.call_open(booking=world.objects["booking_a"])
    daphne = start_daphne(env, port)
    session = session_for(world.users["family_a"])

    async def run() -> None:
        socket = await Socket.open(port, f"/ws/calls/{call.pk}/", session)
        kind, message = await socket.receive(5)
        print(f"  family joined: first message {message.get('type') if kind == 'text' else kind}")
        await socket.send({"type": "heartbeat"})
        silent_from = time.monotonic()
        code = None
        while time.monotonic() - silent_from < 40:
            try:
                kind, value = await socket.receive(40)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                break
            if kind == "close":
                code = value
                break
        waited = time.monotonic() - silent_from
        print(
            f"  browser silent (TCP kept open): closed by the server after {waited:.1f} s, "
            f"code {code}"
        )
        socket.close()

    try:
        asyncio.run(run())
    finally:
        stop(daphne)
    from calls.models import CallConnection

    left = CallConnection.objects.filter(call=call, left_at__isnull=False).count()
    print(f"  participation rows closed (left_at set): {left}")


def drill_celery(env: dict[str, str], world: Any) -> None:
    from django.core.files.base import ContentFile

    from identity import tasks
    from identity.models import FaceResult, IdentityCheck, VerificationStatus
    from tests import factories

    profile = factories.VisitorProfileFactory(verification_status=VerificationStatus.SUBMITTED)
    check = factories.IdentityCheckFactory(profile=profile)
    faces = ROOT / "tests/fixtures/faces"
    check.id_image.save("id.jpg", ContentFile((faces / "obama.jpg").read_bytes()))
    check.selfie_image.save("selfie.jpg", ContentFile((faces / "obama2.jpg").read_bytes()))
    logs = [Path(MEDIA) / "worker-1.log", Path(MEDIA) / "worker-2.log"]

    def worker(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            return subprocess.Popen(
                [str(ROOT / ".venv/bin/celery"), "-A", "purplevisits", "worker", "-P", "solo"]
                + ["-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle"],
                cwd=ROOT,
                env={**env, "CELERY_TASK_ALWAYS_EAGER": "false"},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    first = worker(logs[0])
    time.sleep(4)  # let it connect to the broker
    tasks.run_identity_face_match.delay(check.pk)
    started = time.monotonic()
    while time.monotonic() - started < 30 and "received" not in logs[0].read_text().lower():
        time.sleep(0.005)
    time.sleep(float(os.environ.get("FAULTS_CELERY_KILL_AFTER", "0.05")))  # mid-task
    stop(first, signal.SIGKILL)
    killed_after = time.monotonic() - started
    recorded = IdentityCheck.objects.get(pk=check.pk).face_result != FaceResult.PENDING
    print(
        f"  worker SIGKILLed {killed_after:.1f} s after the task was sent; "
        f"result recorded then: {recorded}"
    )
    second = worker(logs[1])
    restarted = time.monotonic()
    limit = float(os.environ.get("FAULTS_CELERY_WAIT", "90"))
    result = None
    while time.monotonic() - restarted < limit:
        result = IdentityCheck.objects.get(pk=check.pk)
        if result.face_result != FaceResult.PENDING:
            break
        time.sleep(0.5)
    stop(second)
    for n, log in enumerate(logs, 1):
        text = log.read_text()
        print(
            f"  worker {n}: tasks received {text.count('] received')}, "
            f"succeeded {text.count('] succeeded')}"
        )
    if result is not None and result.face_result != FaceResult.PENDING:
        print(
            f"  result recorded by the new worker {time.monotonic() - restarted:.1f} s after it "
            f"started: {result.face_result} (distance {result.face_distance:.3f}), "
            f"checked at {result.face_checked_at:%H:%M:%S}"
        )
    else:
        print(f"  NOT redelivered within {limit:.0f} s of the new worker starting")
    final = IdentityCheck.objects.get(pk=check.pk)
    print(f"  effect recorded once: face_checked_at {final.face_checked_at}")


def drill_relay(env: dict[str, str], port: int, world: Any) -> None:
    """Two runrelay processes, a live call with two real (aiortc) participants joined
    through daphne as browsers are; SIGKILL the relay carrying it and time, for each
    participant, until the other side's video arrives again."""
    from calls import services as call_services
    from calls.models import Call
    from calls.relay.registry import get_registry
    from calls.relay.synthetic import SyntheticPeer

    relay_env = {**env, "RELAY_IN_PROCESS": "false"}
    call = call_services.call_open(booking=world.objects["booking_a"])

    def relay() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), "manage.py", "runrelay"],
            cwd=ROOT,
            env=relay_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_live(count: int) -> list[Any]:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            live = get_registry().live()
            if len(live) >= count:
                return live
            time.sleep(0.3)
        return get_registry().live()

    sides = {
        "family": (session_for(world.users["family_a"]), "prisoner"),
        "prisoner": (session_for(world.users["terminal"]), "family"),
    }
    media_at: dict[str, list[float]] = {side: [] for side in sides}
    restarts: dict[str, int] = {side: 0 for side in sides}

    async def participant(side: str, stop_at: float) -> None:
        """Behaves as static/js/call.js: offer, and offer again on relay_unavailable."""
        session, other = sides[side]
        socket = await Socket.open(port, f"/ws/calls/{call.pk}/", session)
        peer: SyntheticPeer | None = None
        waiters: list[asyncio.Task[None]] = []

        async def start_peer() -> None:
            nonlocal peer
            if peer is not None:
                await peer.close()
            peer = SyntheticPeer(side)
            await socket.send({"type": "offer", "sdp": await peer.offer()})

        async def until_media(current: SyntheticPeer) -> None:
            try:
                await current.wait_for(other, count=3, timeout=60)
            except TimeoutError:
                return
            if current is peer:
                media_at[side].append(time.monotonic())

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(5)
                await socket.send({"type": "heartbeat"})

        beating = asyncio.ensure_future(heartbeats())
        await start_peer()
        try:
            while time.monotonic() < stop_at:
                try:
                    kind, message = await socket.receive(max(0.1, stop_at - time.monotonic()))
                except TimeoutError:
                    break
                if kind != "text":
                    print(f"  {side}: socket closed ({message})")
                    break
                if message.get("type") == "answer" and peer is not None:
                    await peer.answer(message["sdp"])
                    waiters.append(asyncio.ensure_future(until_media(peer)))
                elif message.get("type") == "error" and message.get("code") == "relay_unavailable":
                    restarts[side] += 1
                    await asyncio.sleep(0.2)
                    await start_peer()
        finally:
            beating.cancel()
            for waiter in waiters:
                waiter.cancel()
            if peer is not None:
                await peer.close()
            socket.close()

    processes: list[subprocess.Popen[bytes]] = []
    daphne = None
    try:
        processes.append(relay())
        if not wait_live(1):
            print("  runrelay did not announce itself within 40 s: drill skipped")
            return
        daphne = start_daphne(relay_env, port)

        async def run() -> float | None:
            stop_at = time.monotonic() + 75
            tasks = [asyncio.ensure_future(participant(side, stop_at)) for side in sides]
            deadline = time.monotonic() + 40
            while not all(media_at.values()) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            if not all(media_at.values()):
                print("  the participants never saw each other: drill skipped")
                for task in tasks:
                    task.cancel()
                return None
            pinned = await asyncio.to_thread(Call.objects.get, pk=call.pk)
            print(f"  call live on relay {pinned.relay_id}, both sides see each other")
            processes.append(relay())
            if len(await asyncio.to_thread(wait_live, 2)) < 2:
                print("  the second relay did not start: drill skipped")
                return None
            await asyncio.sleep(3)  # a few seconds of call on the first relay
            stop(processes[0], signal.SIGKILL)
            killed = time.monotonic()
            while time.monotonic() < stop_at and not all(
                any(t > killed for t in times) for times in media_at.values()
            ):
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            after = await asyncio.to_thread(Call.objects.get, pk=call.pk)
            for side, times in media_at.items():
                back = [t - killed for t in times if t > killed]
                print(
                    f"  {side}: video from the other side again "
                    + (f"{back[0]:.1f} s after the kill" if back else "NOT within the drill")
                    + f" ({restarts[side]} re-offer(s))"
                )
            print(
                f"  call now on relay {after.relay_id}; status {after.status}; timer intact "
                f"(started_at, ends_at unchanged): "
                f"{(after.started_at, after.ends_at) == (pinned.started_at, pinned.ends_at)}"
            )
            return killed

        asyncio.run(run())
    finally:
        for process in processes:
            stop(process, signal.SIGKILL)
        if daphne is not None:
            stop(daphne)


def poll(
    port: int, seconds: float, paths: list[str], cookie: str
) -> list[tuple[float, str, int, str]]:
    samples = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for path in paths:
            status, body = get(port, path, cookie)
            samples.append((time.monotonic() - start, path, status, body))
        time.sleep(0.1)
    return samples


def summarise(samples: list[tuple[float, str, int, str]], fault_at: float) -> None:
    for path in sorted({s[1] for s in samples}):
        rows = [s for s in samples if s[1] == path and s[0] >= fault_at]
        statuses: dict[int, int] = {}
        for _, _, status, _ in rows:
            statuses[status] = statuses.get(status, 0) + 1
        bad = [s for s in rows if s[2] != 200]
        traces = sum("Traceback" in s[3] for s in rows)
        recovered = None
        if bad:
            last_bad = max(s[0] for s in bad)
            later = [s for s in rows if s[0] > last_bad and s[2] == 200]
            recovered = (later[0][0] - fault_at) if later else None
        print(
            f"  {path}: statuses {statuses}; stack traces in bodies: {traces}; "
            + (
                "never failed"
                if not bad
                else f"first failure {bad[0][0] - fault_at:.1f} s, "
                + (
                    f"200 again {recovered:.1f} s after the restart began"
                    if recovered
                    else "NOT recovered"
                )
            )
        )
        if bad:
            print(f"    a failed body: {bad[0][3][:160]!r}")


def drill_postgres(env: dict[str, str], port: int, world: Any) -> None:
    daphne = start_daphne(env, port)
    cookie = f"sessionid={session_for(world.users['family_a'])}"
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(poll, port, 20, ["/healthz", "/visits/"], cookie)
            time.sleep(1)
            began = time.monotonic()
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                timeout=60,
            )
            print(f"  pg_ctlcluster restart took {time.monotonic() - began:.1f} s")
            summarise(future.result(), 1.0)
    finally:
        stop(daphne)


def drill_redis(env: dict[str, str], port: int, world: Any, redis_url: str) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from calls import services as call_services
    from purplevisits.realtime import call_group, establishment_group

    call = call_services.call_open(booking=world.objects["booking_a"])
    family_session = session_for(world.users["family_a"])
    call_path = f"/ws/calls/{call.pk}/"
    daphne = start_daphne(env, port)
    session = session_for(world.users["officer_x"])
    x = world.objects["x"]
    path = f"/ws/staff/{x.code}/dashboard/"

    async def rejoin_call(began: float) -> None:
        """Reconnect the family like call.js (2, 4, 8, 10 s) and read the call's state."""
        retries = 0
        while time.monotonic() - began < 60:
            try:
                again = await Socket.open(port, call_path, family_session)
                kind, message = await again.receive(5)
                if kind == "text":
                    print(
                        f"  family rejoined the call after {time.monotonic() - began:.1f} s: "
                        f"{message.get('type')} status={message.get('status')}"
                    )
                    again.close()
                    return
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                pass
            retries += 1
            await asyncio.sleep(min(10, 2 ** min(retries, 4)))
        print("  family could NOT rejoin the call within 60 s")

    async def run() -> None:
        family = await Socket.open(port, call_path, family_session)
        kind, message = await family.receive(5)
        print(
            f"  family in the call: first message {message.get('type') if kind == 'text' else kind}"
        )
        socket = await Socket.open(port, path, session)
        kind, message = await socket.receive(5)
        print(f"  dashboard open: first message {message.get('type') if kind == 'text' else kind}")
        began = time.monotonic()
        if not os.environ.get("FAULTS_DRY_RUN"):  # dry run: the drill's code, no restart
            subprocess.run(
                ["redis-cli", "-u", redis_url, "shutdown", "nosave"], timeout=10, check=False
            )
            subprocess.run(REDIS_START, timeout=10, check=True)
        restarted = time.monotonic() - began
        print(f"  redis shut down and started again in {restarted:.2f} s")
        health = None
        while time.monotonic() - began < 30:
            if get(port, "/healthz")[0] == 200:
                health = time.monotonic() - began
                break
            await asyncio.sleep(0.1)
        print(
            f"  /healthz 200 again after {health:.1f} s" if health else "  /healthz NOT 200 in 30 s"
        )
        # Did the server drop the socket? Then reconnect like dashboard.js.
        closed = None
        try:
            kind, value = await socket.receive(3)
            closed = value if kind == "close" else None
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            closed = "silent"
        print(f"  the old dashboard socket after the restart: {closed or 'still delivering'}")
        socket.close()
        try:
            await family.send({"type": "heartbeat"})
            kind, value = await family.receive(3)
            family_after = (
                f"closed {value}" if kind == "close" else f"open, sent {str(value)[:120]}"
            )
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            family_after = "silent (heartbeat accepted, nothing sent back)"
        print(f"  the family's old call socket after the restart: {family_after}")
        # Still open? Then its heartbeat put it back in the call's group and a staff
        # message must reach it; or the server closes it and the browser reconnects.
        await asyncio.get_running_loop().run_in_executor(None, push_call_message)
        outcome = "nothing within 3 s"
        try:
            while True:
                kind, message = await family.receive(3)
                if kind == "close":
                    outcome = f"closed by the server ({message}): the browser reconnects"
                    break
                if kind == "text" and message.get("type") == "message":
                    outcome = "a staff message pushed to the call's group reached it"
                    break
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        print(f"  then: {outcome}")
        family.close()
        await rejoin_call(began)
        retry, reopened, fresh = 0, None, None
        while time.monotonic() - began < 40:
            try:
                fresh = await Socket.open(port, path, session)
                kind, message = await fresh.receive(5)
                if kind == "text":
                    reopened = time.monotonic() - began
                    break
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                pass
            retry = min(retry + 1, 6)
            await asyncio.sleep(0.5 * 2 ** (retry - 1))
        print(
            f"  dashboard reopened after {reopened:.1f} s"
            if reopened
            else "  dashboard NOT reopened"
        )
        if fresh is not None and reopened:
            await asyncio.get_running_loop().run_in_executor(None, push, x)
            got = None
            try:
                while True:
                    kind, message = await fresh.receive(5)
                    if kind == "text" and message.get("type") == "call":
                        got = message
                        break
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass
            print(f"  a group push after the restart reached the dashboard: {bool(got)}")
            fresh.close()

    def push_call_message() -> None:
        async_to_sync(get_channel_layer().group_send)(
            call_group(str(call.pk)), {"type": "call.message", "text": "after the restart"}
        )

    def push(x: Any) -> None:
        async_to_sync(get_channel_layer().group_send)(
            establishment_group(x.pk), {"type": "dashboard.call", "call_id": str(call.pk)}
        )

    try:
        asyncio.run(run())
    finally:
        stop(daphne)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "drills", nargs="*", choices=DRILLS, default=["heartbeat", "celery", "relay"]
    )
    parser.add_argument("--port", type=int, default=8162)
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not admin_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print("skipped: set DATABASE_URL (PostgreSQL) and REDIS_URL (a Redis db of your own)")
        return
    host = urlsplit(redis_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("REDIS_URL must be on loopback")
    booking_rush.BENCH_DB = BENCH_DB
    database_url = booking_rush.bench_database_url(admin_url)
    booking_rush.create_database(admin_url)
    env = environment(database_url, redis_url)
    os.environ.update(
        {
            k: v
            for k, v in env.items()
            if k in ("DATABASE_URL", "REDIS_URL", "PRIVATE_MEDIA_ROOT", "CACHE_KEY_PREFIX")
        }
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "purplevisits.settings"
    import django

    django.setup()
    from django.db import connections

    for name in args.drills:
        connections.close_all()  # the postgres drill kills this process's connection too
        world = seed()
        print(f"== {name}")
        started = time.monotonic()
        if name == "heartbeat":
            drill_heartbeat(env, args.port, world)
        elif name == "celery":
            drill_celery(env, world)
        elif name == "relay":
            drill_relay(env, args.port, world)
        elif name == "postgres":
            drill_postgres(env, args.port, world)
        elif name == "redis":
            drill_redis(env, args.port, world, redis_url)
        print(f"  (drill took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
