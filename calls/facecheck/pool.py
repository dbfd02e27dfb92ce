"""The process pool that runs face checks for every call of one relay process.

dlib holds the GIL, so face work in threads would stall the relay's media loop: it
runs in worker processes. One pool per relay process, shared by every call on that
relay. Its size: ``FACE_CHECK_WORKERS`` when an operator sets it, otherwise the cores
this process may run on shared by the relay processes of the host (``runrelay
--processes N`` on C cores: ``max(1, C // N)`` workers each), so that relays and their
pools together do not ask for more cores than there are (:func:`pool_size`).

A worker that dies (OOM killer, a segfault in native code) breaks a
``ProcessPoolExecutor`` for good; :meth:`FaceCheckPool.run` then logs the failure,
replaces the executor and raises :class:`WorkerCrashed` for the checks that were in
flight, which the callers skip. The next checks run on the new pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from calls.facecheck.analysis import worker_initializer

logger = logging.getLogger("calls.facecheck")

# dlib built with OpenBLAS (deploy/dlib.sh) would start a BLAS thread per core in every
# worker: the pool already has a process per core, so one thread each (workers inherit
# this from the process that starts them, before they load dlib).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

T = TypeVar("T")


class WorkerCrashed(RuntimeError):
    """A face-check worker process died while this check was queued or running."""

    code = "FACE_WORKER_CRASHED"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. ``taskset``/cpusets)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pool_size(*, cores: int, relay_processes: int, override: int | None = None) -> int:
    """Workers of each relay process's pool: ``override`` if given, else the cores
    shared out between the host's relay processes, at least one each."""
    if override:
        return override
    return max(1, cores // max(1, relay_processes))


# How many relay processes share this host's cores: `runrelay --processes N` tells each
# of its children (set_relay_processes) before the pool is made. 1 otherwise (one relay,
# or the relay inside a web process).
_relay_processes = 1


def set_relay_processes(count: int) -> None:
    """Size this process's pool for ``count`` relay processes on the host."""
    global _relay_processes
    if count < 1:
        raise ValueError("at least one relay process")
    _relay_processes = count


def workers_override() -> int | None:
    """``FACE_CHECK_WORKERS`` if the operator chose a number, None (0) for automatic."""
    from django.conf import settings

    value = int(getattr(settings, "FACE_CHECK_WORKERS", 0) or 0)
    return value if value > 0 else None


def default_workers() -> int:
    return pool_size(
        cores=usable_cores(), relay_processes=_relay_processes, override=workers_override()
    )


class FaceCheckPool:
    def __init__(self, workers: int | None = None, *, start_method: str = "forkserver") -> None:
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError("a face-check pool needs at least one worker")
        # forkserver: the relay has threads and a running event loop, which fork() would
        # copy in an undefined state; spawn would re-import the relay's __main__.
        self._context = multiprocessing.get_context(start_method)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.restarts = 0
        self.closed = False

    def _make(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=worker_initializer,
            initargs=(os.getpid(),),
        )

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self.closed:
                raise RuntimeError("the face-check pool is shut down")
            if self._executor is None:
                self._executor = self._make()
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor, error: BaseException) -> None:
        with self._lock:
            if self._executor is not broken or self.closed:
                return  # another check already replaced it
            self.restarts += 1
            logger.error(
                "Face-check worker process died (%s); restarting the pool (restart %d).",
                error,
                self.restarts,
            )
            self._executor = self._make()
        broken.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` in a worker; WorkerCrashed if the pool broke under it."""
        executor = self._current()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(executor, fn, *args)
            return await asyncio.wait_for(future, timeout)
        except BrokenProcessPool as error:
            self._replace(executor, error)
            raise WorkerCrashed(str(error)) from error

    async def warm(self) -> list[int]:
        """Start every worker and load the models now, not on the first call's checks."""
        pids = await asyncio.gather(*(self.run(_slow_pid) for _ in range(self.workers)))
        return sorted(set(pids))

    def worker_pids(self) -> list[int]:
        """Pids of the live workers (for tests, benchmarks and the relay's load report)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(processes)

    def shutdown(self, *, wait: bool = True) -> None:
        with self._lock:
            self.closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)


def _slow_pid() -> int:
    # Long enough that warm() cannot hand every job to the first worker.
    import time

    time.sleep(0.05)
    return os.getpid()


_shared: FaceCheckPool | None = None
_shared_pid = 0
_shared_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child (a test server, a pre-forking web server) can use neither its
    parent's executor (its threads are not here) nor its parent's forkserver (not its
    child: ``waitpid`` fails with "No child processes"). Start both afresh on demand."""
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()
    try:
        from multiprocessing import forkserver

        server: Any = forkserver._forkserver  # type: ignore[attr-defined]
        if server._forkserver_alive_fd is not None:
            # Our copy of the parent's "alive" pipe: holding it would keep the parent's
            # forkserver running after the parent exits.
            with contextlib.suppress(OSError):
                os.close(server._forkserver_alive_fd)
        server._forkserver_address = None
        server._forkserver_alive_fd = None
        server._forkserver_pid = None
        server._lock = threading.Lock()
    except Exception:  # a Python without this internal layout: nothing to reset
        logger.debug("forkserver state not reset after fork", exc_info=True)


os.register_at_fork(after_in_child=_after_fork_in_child)


def shared_pool() -> FaceCheckPool:
    """The relay process's one pool (created on first use)."""
    global _shared, _shared_pid
    with _shared_lock:
        # A forked child cannot use its parent's executor (see _after_fork_in_child).
        if _shared is None or _shared.closed or _shared_pid != os.getpid():
            _shared = FaceCheckPool()
            _shared_pid = os.getpid()
        return _shared


def close_shared_pool() -> None:
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.shutdown(wait=True)
