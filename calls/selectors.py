"""Reads of the calls app: who may join which call, and the state pushed to sockets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import QuerySet
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from calls.labels import ROLE, status_label
from calls.models import Call, CallConnection, CallEvent, CallEventKind, CallRole, EndReason
from establishments.models import Establishment, StaffRole, Terminal
from establishments.selectors import has_role_at

User = AuthUser | AnonymousUser

# A socket whose heartbeats stopped this long ago no longer counts as connected, even
# if its process died without closing the row (the consumer itself closes a socket
# after 15 s of silence).
STALE_AFTER = timedelta(seconds=30)
MEDIA_ROLES = (CallRole.FAMILY, CallRole.PRISONER)


def call_with_booking(call_id: uuid.UUID | str) -> Call | None:
    try:
        return Call.objects.select_related(
            "booking",
            "booking__establishment",
            "booking__terminal",
            "booking__lead_visitor",
            "booking__prisoner",
        ).get(pk=call_id)
    except (Call.DoesNotExist, ValueError):
        return None


def terminal_for_user(user: User) -> Terminal | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Terminal.objects.select_related("establishment").filter(user=user.pk).first()


def booking_role_for_user(booking: Booking, user: User) -> str | None:
    """The role ``user`` has on the call of ``booking``, decided by the server only."""
    if not getattr(user, "is_authenticated", False):
        return None
    if booking.lead_visitor.user_id == user.pk:
        return CallRole.FAMILY
    if booking.terminal.user_id is not None and booking.terminal.user_id == user.pk:
        return CallRole.PRISONER
    if has_role_at(user, booking.establishment_id, StaffRole.OFFICER):
        return CallRole.MONITOR
    return None


def call_role_for_user(call: Call, user: User) -> str | None:
    return booking_role_for_user(call.booking, user)


def join_window(booking: Booking) -> tuple[datetime, datetime]:
    """From ``join_window_minutes`` before the slot until the slot's end."""
    opens = booking.starts_at - timedelta(minutes=booking.establishment.join_window_minutes)
    return opens, booking.ends_at


def connected_roles(call_id: uuid.UUID | str, now: datetime | None = None) -> set[str]:
    now = now or timezone.now()
    return set(
        CallConnection.objects.filter(
            call_id=call_id, left_at__isnull=True, last_seen_at__gte=now - STALE_AFTER
        ).values_list("role", flat=True)
    )


def _connected_muted(call_id: uuid.UUID | str, now: datetime | None = None) -> dict[str, bool]:
    """{role: muted} of the participants connected now (muted if any socket of theirs is)."""
    now = now or timezone.now()
    found: dict[str, bool] = {}
    for role, muted in CallConnection.objects.filter(
        call_id=call_id, left_at__isnull=True, last_seen_at__gte=now - STALE_AFTER
    ).values_list("role", "muted"):
        found[role] = found.get(role, False) or muted
    return found


def call_state_payload(call: Call, now: datetime | None = None) -> dict[str, Any]:
    """The fields of the contract's ``state`` message (without ``server_time``)."""
    roles = _connected_muted(call.pk, now)
    return {
        "call_id": str(call.pk),
        "status": call.status,
        "pause_reason": call.pause_reason or None,
        "end_reason": call.end_reason or None,
        # Plain words for the codes above (calls.labels): clients may show them as they are.
        "status_label": status_label(call.status, call.pause_reason, call.end_reason),
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "ends_at": call.ends_at.isoformat() if call.ends_at else None,
        "slot_ends_at": call.booking.ends_at.isoformat(),
        "participants": [
            {
                "role": role,
                "connected": role in roles,
                "muted": roles.get(role, False),
                "label": str(ROLE[role]),
            }
            for role in MEDIA_ROLES
        ],
        # What staff wrote when they ended the call: both sides are shown it.
        "end_note": staff_end_note(call),
    }


def call_event_payload(event: CallEvent) -> dict[str, Any]:
    """A call event as the monitor's page lists it (the socket's ``event`` message)."""
    return {
        "id": event.pk,
        "kind": event.kind,
        "created_at": event.created_at.isoformat(),
        "time_label": timezone.localtime(event.created_at).strftime("%H:%M:%S"),
        "text": event.summary,
    }


def staff_end_note(call: Call) -> str | None:
    """The reason staff gave for ending the call (None unless staff ended it)."""
    if call.end_reason != EndReason.TERMINATED:
        return None
    event = (
        CallEvent.objects.filter(call=call, kind=CallEventKind.ENDED)
        .exclude(reason__in=EndReason.values)
        .order_by("-created_at", "-pk")
        .values_list("reason", flat=True)
        .first()
    )
    return event or None


@dataclass(frozen=True)
class TerminalCall:
    booking: Booking
    call: Call | None
    opens_at: datetime
    joinable: bool


def terminal_calls_today(terminal: Terminal, now: datetime | None = None) -> list[TerminalCall]:
    """Today's confirmed calls on one laptop (establishment time), with their state."""
    now = now or timezone.now()
    establishment: Establishment = terminal.establishment
    local_day = timezone.localtime(now, establishment.tz).date()
    bookings: QuerySet[Booking] = (
        Booking.objects.filter(
            terminal=terminal,
            starts_at__date=local_day,
            status__in=[BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.TERMINATED],
        )
        .select_related("prisoner", "lead_visitor", "establishment", "call")
        .order_by("starts_at")
    )
    result = []
    for booking in bookings:
        call = getattr(booking, "call", None)
        opens, closes = join_window(booking)
        joinable = (
            booking.status == BookingStatus.CONFIRMED
            and opens <= now < closes
            and (call is None or call.status != "ended")
        )
        result.append(TerminalCall(booking=booking, call=call, opens_at=opens, joinable=joinable))
    return result
