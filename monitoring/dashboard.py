"""What the establishment's live dashboard shows: one tile per call of the day.

The same plain dicts are rendered into the page and sent over the dashboard socket,
so a page that reconnects catches up from the database with one snapshot.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking, BookingStatus
from calls.labels import alert_label, status_label
from calls.models import Call, CallStatus
from establishments.models import Establishment
from monitoring.models import Alert

# Grid columns, in the order an officer reads them.
COLUMNS = [
    ("upcoming", _("Upcoming")),
    ("waiting", _("Waiting")),
    ("live", _("Live")),
    ("paused", _("Paused")),
    ("ended", _("Ended")),
]
_SHOWN = [
    BookingStatus.CONFIRMED,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
    BookingStatus.TERMINATED,
]


def _day_bounds(establishment: Establishment, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=establishment.tz)
    return start, start + timedelta(days=1)


def _bookings(establishment: Establishment) -> QuerySet[Booking]:
    return Booking.objects.filter(establishment=establishment, status__in=_SHOWN).select_related(
        "prisoner", "terminal", "lead_visitor", "call", "staff_test_call"
    )


def _column(booking: Booking, call: Call | None) -> str:
    if call is not None:
        return str(call.status)
    if booking.status == BookingStatus.CONFIRMED:
        return "upcoming"
    return "ended"


def tile(booking: Booking) -> dict[str, Any]:
    call: Call | None = getattr(booking, "call", None)
    return {
        "booking": str(booking.reference),
        "call": str(call.id) if call else None,
        "column": _column(booking, call),
        "status": call.status if call else booking.status,
        "pause_reason": (call.pause_reason or None) if call else None,
        "end_reason": (call.end_reason or None) if call else None,
        "status_label": status_label(call.status, call.pause_reason, call.end_reason)
        if call
        else status_label(booking.status),
        "prisoner": f"{booking.prisoner.prison_number} {booking.prisoner.full_name}",
        "visitor": booking.lead_visitor.legal_name,
        "terminal": booking.terminal.name,
        "starts_at": booking.starts_at.isoformat(),
        "slot_ends_at": booking.ends_at.isoformat(),
        "ends_at": call.ends_at.isoformat() if call and call.ends_at else None,
        "starts_label": timezone.localtime(booking.starts_at).strftime("%H:%M"),
        "is_test": hasattr(booking, "staff_test_call"),
    }


def tiles_for_day(establishment: Establishment, day: date | None = None) -> list[dict[str, Any]]:
    """Every call of the day, in start order: two queries whatever the number of calls."""
    day = day or timezone.localdate(timezone.now(), establishment.tz)
    start, end = _day_bounds(establishment, day)
    bookings = _bookings(establishment).filter(starts_at__gte=start, starts_at__lt=end)
    return [tile(booking) for booking in bookings.order_by("starts_at", "terminal__name")]


def tile_for_call(call_id: uuid.UUID | str) -> tuple[int, dict[str, Any]] | None:
    booking = (
        Booking.objects.select_related(
            "prisoner", "terminal", "lead_visitor", "call", "staff_test_call"
        )
        .filter(call__id=call_id)
        .first()
    )
    if booking is None:
        return None
    return booking.establishment_id, tile(booking)


_ALERT_RELATED = (
    "establishment",
    "acknowledged_by",
    "call__booking__prisoner",
    "call__booking__terminal",
    "call__booking__lead_visitor",
)


def call_label(booking: Booking, establishment: Establishment) -> str:
    """Which call, as an officer names it: '14:30 · Laptop 1 · A1234BC Jo Bloggs with Ann Lee'."""
    who = gettext("%(prisoner)s with %(visitor)s") % {
        "prisoner": f"{booking.prisoner.prison_number} {booking.prisoner.full_name}",
        "visitor": booking.lead_visitor.legal_name,
    }
    return (
        f"{timezone.localtime(booking.starts_at, establishment.tz):%H:%M} · "
        f"{booking.terminal.name} · {who}"
    )


def alert_data(alert: Alert) -> dict[str, Any]:
    booking = alert.call.booking
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "label": alert_label(alert.kind, alert.side),
        "side": alert.side,
        "call": str(alert.call_id),
        "call_label": call_label(booking, alert.establishment),
        "call_url": reverse(
            "monitoring:call_detail", args=[alert.establishment.code, alert.call_id]
        ),
        "call_ended": alert.call.status == CallStatus.ENDED,
        "created_at": alert.created_at.isoformat(),
        "time_label": timezone.localtime(alert.created_at, alert.establishment.tz).strftime(
            "%H:%M:%S"
        ),
        "acknowledged": alert.acknowledged_at is not None,
        "acknowledged_by": alert.acknowledged_by.email if alert.acknowledged_by else None,
        "snapshot_url": reverse(
            "monitoring:alert_snapshot", args=[alert.establishment.code, alert.pk]
        )
        if alert.snapshot
        else None,
    }


def open_alerts(establishment: Establishment) -> list[dict[str, Any]]:
    """Unacknowledged alerts, newest first (the same order live and after a reload)."""
    alerts = (
        Alert.objects.filter(establishment=establishment, acknowledged_at__isnull=True)
        .select_related(*_ALERT_RELATED)
        .order_by("-created_at", "-pk")[:50]
    )
    return [alert_data(alert) for alert in alerts]


def alert_groups(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts grouped per call, the group with the newest alert first, newest first within."""
    groups: dict[str, dict[str, Any]] = {}
    for alert in sorted(alerts, key=lambda a: (a["created_at"], a["id"]), reverse=True):
        group = groups.setdefault(
            alert["call"],
            {
                "call": alert["call"],
                "call_label": alert["call_label"],
                "call_url": alert["call_url"],
                "call_ended": alert["call_ended"],
                "alerts": [],
            },
        )
        group["alerts"].append(alert)
    return list(groups.values())


def alert_for_push(alert_id: int) -> tuple[int, dict[str, Any]] | None:
    alert = Alert.objects.select_related(*_ALERT_RELATED).filter(pk=alert_id).first()
    return (alert.establishment_id, alert_data(alert)) if alert else None


def snapshot(establishment: Establishment) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "server_time": timezone.now().isoformat(),
        "calls": tiles_for_day(establishment),
        "alerts": open_alerts(establishment),
        "live_statuses": [CallStatus.LIVE, CallStatus.PAUSED],
    }
