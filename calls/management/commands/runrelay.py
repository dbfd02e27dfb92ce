"""Run the media relay processes of one host (production).

``runrelay --processes N`` (default: the cores this process may run on) starts N relay
processes, each a full :class:`~calls.relay.server.RelayServer` on its own event loop,
named ``<relay id>-0`` … ``<relay id>-<N-1>`` in the Redis registry. Calls are spread
over them exactly as over hosts: a new call goes to the least loaded live relay
(calls/relay/registry.py). One relay process is one event loop, about one core of media
work; N of them use every core.

The parent only supervises: it restarts a child that dies (after 1 s, doubling up to
30 s while a child keeps dying within a minute of starting), passes SIGTERM and SIGINT
on to the children, and waits (``--stop-timeout``) while they close their peers. A child
also stops if the parent is killed outright (PR_SET_PDEATHSIG). ``--processes 1`` runs one
relay in this process, named ``<relay id>``, with no parent, as before.

Face checks: each relay process has its own pool of face-check workers
(calls/facecheck/pool.py), ``max(1, cores // N)`` workers unless ``FACE_CHECK_WORKERS``
is set, so relays and pools together do not oversubscribe the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger(__name__)

# The first restart waits RESTART_FIRST_SECONDS; each further death within
# RESTART_RESET_SECONDS of its start doubles the wait, up to RESTART_MAX_SECONDS.
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
RESTART_RESET_SECONDS = 60.0
PARENT_PID_ENV = "PV_RELAY_PARENT_PID"
PR_SET_PDEATHSIG = 1


def default_processes() -> int:
    """``settings.RELAY_PROCESSES`` when set (not 0), else the usable cores."""
    from calls.facecheck.pool import usable_cores

    return int(getattr(settings, "RELAY_PROCESSES", 0) or 0) or usable_cores()


def child_relay_id(base: str, index: int) -> str:
    return f"{base}-{index}"


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a child that died ``failures`` times in a row."""
    return min(RESTART_MAX_SECONDS, RESTART_FIRST_SECONDS * 2 ** max(0, failures - 1))


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGTERM this child when the supervising parent dies, however it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Command(BaseCommand):
    help = (
        "Run this host's media relays: --processes N relay processes (default: the cores), "
        "each announced in Redis as <relay id>-<i> and answering the calls assigned to it "
        "(least loaded first, as across hosts), supervised and restarted by this process. "
        "Each relay's face-check pool gets max(1, cores // N) workers unless "
        "FACE_CHECK_WORKERS is set. --processes 1: one relay in this process, named "
        "<relay id>."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--relay-id",
            default=os.environ.get("RELAY_ID") or None,
            help="Name in the registry (default: $RELAY_ID, else random); with several "
            "processes each is named <relay id>-<i>. `manage.py healthcheck relay` "
            "looks for it.",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="Relay processes on this host (default: $RELAY_PROCESSES, else the "
            "number of cores this process may use). 1: no supervising parent.",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=30.0,
            help="Seconds the parent waits for its relays to close their peers on "
            "SIGTERM/SIGINT before it kills them (default 30).",
        )
        # Internal: the parent starts each relay process as `runrelay --child i`.
        parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "runrelay needs REDIS_URL (a channel layer and registry shared with the web "
                "processes). Without Redis the relay runs inside the web process."
            )
        if settings.RELAY_IN_PROCESS:
            raise CommandError("Set RELAY_IN_PROCESS=false so web processes use this relay.")
        processes = options.get("processes")
        count = int(processes) if processes is not None else default_processes()  # type: ignore[call-overload]
        if count < 1:
            raise CommandError("--processes must be at least 1.")
        relay_id = options.get("relay_id")
        child = options.get("child")
        if child is not None:
            parent = int(os.environ.get(PARENT_PID_ENV, "0") or 0)
            if parent:
                _die_with_parent(parent)
            self._run_one(child_relay_id(str(relay_id), int(child)), count)  # type: ignore[call-overload]
        elif count == 1:
            self._run_one(relay_id, 1)  # type: ignore[arg-type]
        else:
            from calls.relay.registry import new_relay_id

            base = str(relay_id or new_relay_id())
            supervisor = Supervisor(
                base,
                count,
                stop_timeout=float(options.get("stop_timeout") or 30.0),  # type: ignore[arg-type]
                write=self.stdout.write,
            )
            code = asyncio.run(supervisor.run())
            if code:
                raise CommandError(f"relay processes did not stop cleanly (exit {code})")

    # --- one relay process -----------------------------------------------------------

    def _run_one(self, relay_id: str | None, processes: int) -> None:
        from calls.facecheck.pool import set_relay_processes

        set_relay_processes(processes)
        asyncio.run(self._run(relay_id))

    async def _publish_stats(self, relay_id: str, stop: asyncio.Event) -> None:
        """Every few seconds: this relay's CPU (with its face-check workers') and its
        face-check figures, for /metrics (purplevisits/metrics.py)."""
        from purplevisits import metrics

        def publish() -> None:
            cpu = metrics.process_cpu_seconds()
            if settings.FACE_CHECKS_ENABLED:
                from calls.facecheck import shared_pool

                cpu += sum(metrics.process_cpu_seconds(p) for p in shared_pool().worker_pids())
            metrics.relay_stats_publish(relay_id=relay_id, cpu_seconds=cpu)

        while not stop.is_set():
            try:
                await asyncio.to_thread(publish)
            except Exception:  # noqa: BLE001 - figures are not worth stopping a relay for
                logger.warning("relay %s: publishing figures failed", relay_id, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.METRICS_FLUSH_SECONDS)

    async def _run(self, relay_id: str | None) -> None:
        from calls.relay.registry import RedisRegistry
        from calls.relay.server import RelayServer

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = RelayServer(
            registry=RedisRegistry(settings.REDIS_URL, key=settings.RELAY_REGISTRY_KEY),
            relay_id=relay_id,
        )
        await server.start()
        self.stdout.write(
            f"relay {server.relay_id} running on {server.channel} (pid {os.getpid()})"
        )
        if settings.FACE_CHECKS_ENABLED:
            from calls.facecheck import shared_pool

            # Start the face-check workers now, not on the first call's first check.
            pool = shared_pool()
            await pool.warm()
            self.stdout.write(
                f"relay {server.relay_id}: face checks on: {pool.workers} worker process(es)"
            )
        stats = asyncio.create_task(self._publish_stats(server.relay_id, stop))
        await stop.wait()
        stats.cancel()
        self.stdout.write(f"relay {server.relay_id} stopping: closing every peer")
        await server.stop()
        from calls.facecheck import close_shared_pool

        close_shared_pool()


class Supervisor:
    """The parent of ``count`` relay processes (``runrelay --child i``)."""

    def __init__(
        self, base: str, count: int, *, stop_timeout: float, write: Callable[[str], None] = print
    ) -> None:
        self.base = base
        self.count = count
        self.stop_timeout = stop_timeout
        self._write = write
        self.stopping = asyncio.Event()
        self.children: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0

    def say(self, text: str) -> None:
        self._write(text)
        with contextlib.suppress(Exception):
            sys.stdout.flush()

    def command(self, index: int) -> list[str]:
        manage = Path(settings.BASE_DIR) / "manage.py"
        return [
            sys.executable,
            str(manage),
            "runrelay",
            "--child",
            str(index),
            "--processes",
            str(self.count),
            "--relay-id",
            self.base,
        ]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        self.say(
            f"runrelay: {self.count} relay processes {self.base}-0…{self.base}-{self.count - 1}"
            f" (pid {os.getpid()})"
        )
        slots = [asyncio.create_task(self._keep(i)) for i in range(self.count)]
        await self.stopping.wait()
        self.say("runrelay: stopping every relay process")
        for process in list(self.children.values()):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*slots)
        return max((abs(c) for c in codes), default=0)

    async def _keep(self, index: int) -> int:
        """Run child ``index``; restart it with backoff until the parent stops."""
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        failures = 0
        while True:
            started = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(*self.command(index), env=env)
            except OSError as error:  # e.g. out of processes or memory: try again later
                failures += 1
                self.say(f"runrelay: relay process {index} could not start ({error})")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), restart_delay(failures))
                if self.stopping.is_set():
                    return 0
                continue
            self.children[index] = process
            self.say(
                f"runrelay: relay process {index} ({child_relay_id(self.base, index)})"
                f" started, pid {process.pid}"
            )
            waiter = asyncio.ensure_future(process.wait())
            stopper = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set():
                stopper.cancel()
                return await self._stop_child(index, process, waiter)
            stopper.cancel()
            code = waiter.result()
            failures = 1 if time.monotonic() - started > RESTART_RESET_SECONDS else failures + 1
            delay = restart_delay(failures)
            self.restarts += 1
            self.say(
                f"runrelay: relay process {index} (pid {process.pid}) exited with {code};"
                f" restarting in {delay:.0f} s"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return 0

    async def _stop_child(
        self, index: int, process: asyncio.subprocess.Process, waiter: asyncio.Future[int]
    ) -> int:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(asyncio.shield(waiter), self.stop_timeout)
        except TimeoutError:
            self.say(f"runrelay: relay process {index} did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await waiter
        # Stopped by our SIGTERM (or its own handler) counts as a clean stop.
        return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
