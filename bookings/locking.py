"""The one place that locks what a booking is about to make less available.

CONVENTIONS #3: lock, in one fixed order (prisoners by id, then terminals by id),
once per transaction and *before* the availability and allowance checks, so that two
bookings for the same prisoner or the same terminals run one after the other. The
database constraints (unique and, on PostgreSQL, exclusion constraints) back this up.

SQLite has no row locks: there `select_for_update` does nothing and the settings use
``transaction_mode: IMMEDIATE``, so every write transaction already runs alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import OperationalError, connection, transaction

from bookings.rules import BookingRefused, RuleCode
from establishments.models import Prisoner, Terminal

LOCK_TIMEOUT_MS = 5000

BUSY_MESSAGE = (
    "Lots of people are booking at the moment and we could not finish yours. "
    "Nothing has been booked: please try again in a minute."
)


def lock_for_booking(*, prisoner_ids: Iterable[int], terminal_ids: Iterable[int]) -> None:
    """Lock the prisoner rows, then the terminal rows, in sorted order."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_for_booking must run inside transaction.atomic")
    prisoners = sorted(set(prisoner_ids))
    terminals = sorted(set(terminal_ids))
    try:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # SET LOCAL lasts until the end of this transaction only.
                cursor.execute(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}")
        # no_key: FOR NO KEY UPDATE still lets other transactions insert rows that
        # reference these (foreign keys take KEY SHARE locks).
        list(
            Prisoner.objects.select_for_update(no_key=True)
            .filter(pk__in=prisoners)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        list(
            Terminal.objects.select_for_update(no_key=True)
            .filter(pk__in=terminals)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    except OperationalError as exc:
        if _is_lock_timeout(exc):
            raise BookingRefused(RuleCode.BUSY, BUSY_MESSAGE) from exc
        raise


def _is_lock_timeout(exc: OperationalError) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    # 55P03 lock_not_available; 40P01 deadlock_detected (should not happen with the
    # fixed order, but is answered the same way if it ever does).
    return sqlstate in {"55P03", "40P01"} or "database is locked" in str(exc)
