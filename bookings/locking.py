"""The one place that locks what a booking is about to make less available.

CONVENTIONS #3: lock, in one fixed order (prisoners by id, then slots by establishment
and start), once per transaction and *before* the availability and allowance checks,
so that two bookings for the same prisoner, or for the same slot, run one after the
other while bookings for different slots run side by side. A slot is locked with a
PostgreSQL transaction-level advisory lock keyed on (establishment, start minute): it
is the slot's terminals that become scarce, and locking every terminal row instead
would queue the whole establishment behind one booking (bench/booking_rush.py). The
database constraints (unique and, on PostgreSQL, exclusion constraints) back this up.

SQLite has no row locks: there `select_for_update` does nothing and the settings use
``transaction_mode: IMMEDIATE``, so every write transaction already runs alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.utils.translation import gettext, gettext_noop

from bookings.rules import BookingRefused, RuleCode
from establishments.models import Prisoner

LOCK_TIMEOUT_MS = 5000

BUSY_MESSAGE = gettext_noop(
    "Lots of people are booking at the moment and we could not finish yours. "
    "Nothing has been booked: please try again in a minute."
)


def lock_for_booking(
    *, prisoner_ids: Iterable[int], slots: Iterable[tuple[int, datetime]] = ()
) -> None:
    """Lock the prisoner rows, then the (establishment id, slot start) keys, in order."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_for_booking must run inside transaction.atomic")
    prisoners = sorted(set(prisoner_ids))
    slot_keys = sorted({(establishment_id, _minute(start)) for establishment_id, start in slots})
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
        if connection.vendor == "postgresql" and slot_keys:
            with connection.cursor() as cursor:
                for establishment_id, minute in slot_keys:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)", [establishment_id, minute]
                    )
    except OperationalError as exc:
        if _is_lock_timeout(exc):
            raise BookingRefused(RuleCode.BUSY, gettext(BUSY_MESSAGE)) from exc
        raise


def _minute(moment: datetime) -> int:
    # Minutes since the epoch fit PostgreSQL's int4 key until the year 6053.
    return int(moment.timestamp() // 60) & 0x7FFFFFFF


def _is_lock_timeout(exc: OperationalError) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    # 55P03 lock_not_available; 40P01 deadlock_detected (should not happen with the
    # fixed order, but is answered the same way if it ever does).
    return sqlstate in {"55P03", "40P01"} or "database is locked" in str(exc)
