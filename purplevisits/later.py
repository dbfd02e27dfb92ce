"""Run a Celery task a few seconds from now, in production and under `make run` alike.

With a broker the task is queued with a countdown (it survives the web process). With
eager Celery (embedded defaults) a countdown would be ignored and the task would run at
once, so a daemon timer in this process runs it instead. Zero seconds runs it now.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)
_pending: set[threading.Timer] = set()
_lock = threading.Lock()


def run_later(task: Any, *, seconds: float, args: tuple[Any, ...] = ()) -> None:
    if seconds <= 0:
        task.apply(args=args)
    elif settings.CELERY_TASK_ALWAYS_EAGER:
        timer = threading.Timer(seconds, lambda: _run_in_thread(task, args, timer))
        timer.daemon = True
        with _lock:
            _pending.add(timer)
        timer.start()
    else:
        task.apply_async(args=args, countdown=seconds)


def cancel_pending() -> int:
    """Cancel the timers not yet run (tests: none fires into the next test's database)."""
    with _lock:
        timers = list(_pending)
        _pending.clear()
    for timer in timers:
        timer.cancel()
    return len(timers)


def _run_in_thread(task: Any, args: tuple[Any, ...], timer: threading.Timer) -> None:
    with _lock:
        _pending.discard(timer)
    try:
        task.apply(args=args)
    except Exception:  # a timer thread has nobody to raise to
        logger.exception("delayed task %s failed", getattr(task, "name", task))
    finally:
        close_old_connections()
