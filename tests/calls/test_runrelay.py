"""`manage.py runrelay --processes N`: N relays announced in Redis, supervised, stopped
together; and how each relay's face-check pool is sized.

The relay tests start the real command (subprocesses) against Redis db 11 with a
registry key of their own; they are skipped when Redis does not answer. Every wait is
on an observable event (a line printed, a registry entry) with a generous ceiling.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calls.facecheck import pool as face_pool
from calls.management.commands import runrelay

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/11"
CEILING = 90.0  # seconds; a loaded 2-core machine starts Django slowly


def _redis():  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception:  # noqa: BLE001 - any failure means "no Redis here"
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return client


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate: Callable[[], object], what: str, run: RelayRun | None = None) -> object:
    deadline = time.monotonic() + CEILING
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    output = f"\n--- output:\n{run.output()[-4000:]}" if run is not None else ""
    raise AssertionError(f"gave up waiting ({CEILING:.0f} s) for {what}{output}")


class RelayRun:
    """`manage.py runrelay …` in a subprocess; its output collected line by line."""

    def __init__(self, *args: str, key: str, face_checks: bool = False) -> None:
        env = {
            **os.environ,
            "REDIS_URL": REDIS_URL,
            "RELAY_IN_PROCESS": "false",
            "RELAY_REGISTRY_KEY": key,
            "FACE_CHECKS_ENABLED": "true" if face_checks else "false",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("RELAY_ID", None)
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, str(ROOT / "manage.py"), "runrelay", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # killpg cleans up whatever is left
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def child_pid(self, index: int, *, not_in: frozenset[int] = frozenset()) -> int | None:
        """Pid of the newest start of relay process ``index``, skipping ``not_in``."""
        marker = f"runrelay: relay process {index} ("
        for line in reversed(list(self.lines)):
            if line.startswith(marker) and " started, pid " in line:
                pid = int(line.rsplit(" ", 1)[1])
                return None if pid in not_in else pid
        return None

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture
def registry() -> Iterator[tuple[str, object]]:
    client = _redis()
    key = f"pv:test:runrelay:{uuid.uuid4().hex[:8]}"
    yield key, client
    client.delete(key)


def announced(client, key: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """relay id → channel of the relays in the registry (live or not yet expired)."""
    import json

    return {k.decode(): json.loads(v)["channel"] for k, v in client.hgetall(key).items()}


def test_two_processes_announce_restart_a_killed_child_and_stop_on_sigterm(registry) -> None:  # type: ignore[no-untyped-def]
    key, client = registry
    run = RelayRun("--processes", "2", "--relay-id", "rt", key=key)
    try:
        first = wait_until(
            lambda: (a := announced(client, key)).keys() == {"rt-0", "rt-1"} and a,
            "both relays announced",
            run,
        )
        assert isinstance(first, dict)
        pids = wait_until(
            lambda: (p := (run.child_pid(0), run.child_pid(1))) and all(p) and p,
            "both children's pids printed",
            run,
        )
        assert isinstance(pids, tuple)
        old0, old1 = pids
        assert run.process.pid not in pids  # the parent supervises, the children relay

        # A child killed outright is started again under the same relay id.
        os.kill(old0, signal.SIGKILL)
        new0 = wait_until(
            lambda: run.child_pid(0, not_in=frozenset({old0})), "relay process 0 restarted", run
        )
        wait_until(
            lambda: announced(client, key).get("rt-0") not in (None, first["rt-0"]),
            "the restarted rt-0 announcing its new channel",
            run,
        )
        assert "exited with -9; restarting" in run.output()
        assert announced(client, key)["rt-1"] == first["rt-1"]  # the other one untouched
        assert _alive(old1)

        # SIGTERM to the parent: every relay closes its peers, withdraws and exits.
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(CEILING) == 0, run.output()
        assert announced(client, key) == {}, run.output()
        assert isinstance(new0, int)
        wait_until(lambda: not _alive(new0) and not _alive(old1), "children gone", run)
        assert "relay rt-0 stopping: closing every peer" in run.output()
        assert "relay rt-1 stopping: closing every peer" in run.output()
    finally:
        run.close()


def test_children_stop_when_the_parent_is_killed(registry) -> None:  # type: ignore[no-untyped-def]
    key, client = registry
    run = RelayRun("--processes", "2", "--relay-id", "orphan", key=key)
    try:
        wait_until(lambda: len(announced(client, key)) == 2, "both relays announced", run)
        pids = wait_until(
            lambda: (p := (run.child_pid(0), run.child_pid(1))) and all(p) and p, "pids", run
        )
        assert isinstance(pids, tuple)
        os.kill(run.process.pid, signal.SIGKILL)  # the parent only, not its group
        run.process.wait(CEILING)
        wait_until(lambda: not any(_alive(p) for p in pids), "orphaned relays stopping", run)
        assert announced(client, key) == {}
    finally:
        run.close()


def test_one_process_runs_in_place_under_its_own_name(registry) -> None:  # type: ignore[no-untyped-def]
    key, client = registry
    run = RelayRun("--processes", "1", "--relay-id", "solo", key=key, face_checks=True)
    try:
        wait_until(lambda: "solo" in announced(client, key), "the relay announced", run)
        assert set(announced(client, key)) == {"solo"}
        line = wait_until(
            lambda: next((x for x in run.lines if x.startswith("relay solo running")), None),
            "the relay's start line",
            run,
        )
        assert f"(pid {run.process.pid})" in str(line)  # no parent: this is the relay
        assert "runrelay: relay process" not in run.output()
        # One relay process on this host: its pool has a worker per usable core.
        expected = face_pool.pool_size(
            cores=face_pool.usable_cores(),
            relay_processes=1,
            override=int(os.environ["FACE_CHECK_WORKERS"])
            if os.environ.get("FACE_CHECK_WORKERS")
            else None,
        )
        wait_until(
            lambda: f"relay solo: face checks on: {expected} worker process(es)" in run.output(),
            "the face-check pool started",
            run,
        )
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(CEILING) == 0, run.output()
        assert announced(client, key) == {}
    finally:
        run.close()


def test_two_processes_share_the_cores_between_their_face_pools(registry) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("FACE_CHECK_WORKERS"):
        pytest.skip("FACE_CHECK_WORKERS is set: the pools are sized by hand")
    key, client = registry
    run = RelayRun("--processes", "2", "--relay-id", "pools", key=key, face_checks=True)
    try:
        expected = max(1, face_pool.usable_cores() // 2)
        for name in ("pools-0", "pools-1"):
            line = f"relay {name}: face checks on: {expected} worker process(es)"
            wait_until(lambda line=line: line in run.output(), f"{name}'s face-check pool", run)  # type: ignore[misc]
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(CEILING) == 0, run.output()
    finally:
        run.close()


# --- arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "processes", "override", "workers"),
    [
        (2, 1, None, 2),  # one relay: a worker per core, as before
        (2, 2, None, 1),  # the default on 2 cores: one relay and one worker per core
        (8, 3, None, 2),
        (8, 8, None, 1),
        (2, 4, None, 1),  # more relays than cores: still one worker each
        (16, 4, None, 4),
        (2, 2, 3, 3),  # FACE_CHECK_WORKERS wins
    ],
)
def test_pool_size(cores: int, processes: int, override: int | None, workers: int) -> None:
    assert face_pool.pool_size(cores=cores, relay_processes=processes, override=override) == workers


@pytest.fixture
def relay_processes() -> Iterator[Callable[[int], None]]:
    before = face_pool._relay_processes
    yield face_pool.set_relay_processes
    face_pool._relay_processes = before


def test_default_workers_follow_the_relay_processes(relay_processes, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(face_pool, "usable_cores", lambda: 4)
    settings.FACE_CHECK_WORKERS = 0  # settings.py's default: automatic
    relay_processes(2)
    assert face_pool.default_workers() == 2
    assert face_pool.FaceCheckPool().workers == 2
    relay_processes(4)
    assert face_pool.default_workers() == 1
    relay_processes(1)
    assert face_pool.default_workers() == 4
    relay_processes(3)
    assert face_pool.default_workers() == 1


def test_face_check_workers_set_by_the_operator_wins(
    relay_processes, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(face_pool, "usable_cores", lambda: 4)
    relay_processes(4)
    settings.FACE_CHECK_WORKERS = 4
    assert face_pool.default_workers() == 4
    settings.FACE_CHECK_WORKERS = 3
    assert face_pool.default_workers() == 3


def test_set_relay_processes_refuses_zero(relay_processes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        relay_processes(0)


def test_restart_backoff_doubles_up_to_a_ceiling() -> None:
    delays = [runrelay.restart_delay(n) for n in range(1, 9)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == runrelay.RESTART_MAX_SECONDS
    assert delays == sorted(delays)


def test_child_relay_ids() -> None:
    assert [runrelay.child_relay_id("relay-1", i) for i in range(3)] == [
        "relay-1-0",
        "relay-1-1",
        "relay-1-2",
    ]


def test_default_processes_is_the_usable_cores(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(face_pool, "usable_cores", lambda: 6)
    settings.RELAY_PROCESSES = 0
    assert runrelay.default_processes() == 6
    settings.RELAY_PROCESSES = 2
    assert runrelay.default_processes() == 2
