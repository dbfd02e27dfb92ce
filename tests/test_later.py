"""purplevisits.later under eager Celery: a timer per delayed task, cancellable."""

from __future__ import annotations

import threading

from purplevisits import later


class Task:
    name = "test.task"

    def __init__(self) -> None:
        self.ran = threading.Event()

    def apply(self, args: tuple[object, ...] = ()) -> None:
        self.ran.set()


def test_a_delayed_task_runs_later_and_a_cancelled_one_never(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    soon, cancelled = Task(), Task()
    later.run_later(soon, seconds=0.05)
    assert soon.ran.wait(30)
    later.run_later(cancelled, seconds=0.5)
    assert later.cancel_pending() == 1
    assert not cancelled.ran.wait(1.0)
    assert later.cancel_pending() == 0
