"""Writes of the calls app.

The Call row in the database is the source of truth: every change is a conditional
update that says which state it expects, and returns whether it happened. The
channel layer only carries the news, after commit (purplevisits.realtime), to the
call's sockets and relay and to the establishment's staff dashboard.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from audit.models import AuditAction
from audit.services import audit_record
from bookings.models import Booking, BookingStatus
from calls import selectors
from calls.models import (
    Call,
    CallConnection,
    CallEvent,
    CallEventKind,
    CallRole,
    CallStatus,
    EndReason,
    PauseReason,
)
from purplevisits.realtime import (
    call_group,
    channel_send_on_commit,
    establishment_group,
    group_send_on_commit,
)

logger = logging.getLogger(__name__)
Actor = User | AnonymousUser | None
OPEN_STATUSES = (CallStatus.WAITING, CallStatus.LIVE, CallStatus.PAUSED)
MESSAGE_MAX_CHARS = 500
REASON_MAX_CHARS = 300


class CallRefused(Exception):
    """A person may not join a call (now). ``close_code`` is the SIGNALLING.md code."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


class CallActionRefused(Exception):
    """A control action with bad input (e.g. terminate without a reason)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _event(
    call_id: uuid.UUID | str,
    kind: str,
    *,
    role: str = "",
    actor: Actor = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> CallEvent:
    event = CallEvent(
        call_id=call_id,
        kind=kind,
        role=role,
        actor=_user(actor),
        reason=reason[:REASON_MAX_CHARS],
        detail=detail or {},
    )
    event.full_clean(exclude=["call"])
    event.save()
    # Monitors on the call's page add it to "What happened" as it happens.
    group_send_on_commit(
        call_group(call_id), {"type": "call.event", "event": selectors.call_event_payload(event)}
    )
    return event


def _push_state(call_id: uuid.UUID | str) -> None:
    """Tell the call's sockets, its relay and the staff dashboard, after commit."""
    call = selectors.call_with_booking(call_id)
    if call is None:
        return
    payload = selectors.call_state_payload(call)
    group_send_on_commit(call_group(call.pk), {"type": "call.state", **payload})
    group_send_on_commit(
        establishment_group(call.booking.establishment_id),
        {
            "type": "dashboard.call",
            "call_id": str(call.pk),
            "status": call.status,
            "pause_reason": call.pause_reason or None,
            "end_reason": call.end_reason or None,
            "ends_at": payload["ends_at"],
        },
    )


def _push_state_now(call_id: uuid.UUID | str) -> None:
    """Push the current state outside a transaction (tests and repair tools)."""
    with transaction.atomic():
        _push_state(call_id)


# --- Opening a call -------------------------------------------------------------------


def call_check_joinable(*, booking: Booking, now: datetime | None = None) -> None:
    """Raise CallRefused unless the booking's call can be joined now."""
    now = now or timezone.now()
    if booking.status != BookingStatus.CONFIRMED:
        raise CallRefused("CALL_ENDED", gettext("This call is no longer booked."), 4410)
    opens, closes = selectors.join_window(booking)
    if now >= closes:
        raise CallRefused("CALL_ENDED", gettext("The time for this call has passed."), 4410)
    if now < opens:
        opens_local = timezone.localtime(opens, booking.establishment.tz)
        raise CallRefused(
            "OUTSIDE_WINDOW",
            gettext("You can join this call from %(time)s.") % {"time": f"{opens_local:%H:%M}"},
            4409,
        )


@transaction.atomic
def call_open(*, booking: Booking, now: datetime | None = None) -> Call:
    """The booking's Call, created the first time a participant opens it in the window."""
    call_check_joinable(booking=booking, now=now)
    call, _created = Call.objects.get_or_create(booking=booking)
    if call.status == CallStatus.ENDED:
        raise CallRefused("CALL_ENDED", gettext("This call has ended."), 4410)
    return call


def call_accept_aup(*, booking: Booking, user: User) -> None:
    """Record that the lead visitor accepted the acceptable use policy for this call."""
    if booking.lead_visitor.user_id != user.pk:
        raise CallActionRefused("NOT_LEAD_VISITOR", gettext("Only the lead visitor can accept."))
    with transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(aup_accepted_at=timezone.now())


# --- Participants ---------------------------------------------------------------------


def _replace_older_sockets(
    *, call_id: uuid.UUID | str, role: str, channel_name: str, now: datetime
) -> None:
    """One socket per side: the family (or laptop) opening the call again — another tab,
    another device — takes over, and the older socket is told and closed (4412). Its row
    is closed as "replaced", so nobody is alerted that the side dropped."""
    older = list(
        CallConnection.objects.filter(call_id=call_id, role=role, left_at__isnull=True)
        .exclude(channel_name=channel_name)
        .values_list("pk", "channel_name")
    )
    if not older:
        return
    CallConnection.objects.filter(pk__in=[pk for pk, _ in older]).update(
        left_at=now, left_reason="replaced"
    )
    for _, channel in older:
        channel_send_on_commit(channel, {"type": "call.replaced"})


@transaction.atomic
def call_join(
    *, call_id: uuid.UUID | str, role: str, user: Actor, channel_name: str
) -> CallConnection:
    """Record an opened socket; start the call once family and prisoner are both there."""
    now = timezone.now()
    connection = CallConnection(
        call_id=call_id,
        role=role,
        user=_user(user),
        channel_name=channel_name,
        connected_at=now,
        last_seen_at=now,
    )
    connection.full_clean(exclude=["call", "user"])
    if role in selectors.MEDIA_ROLES:
        _replace_older_sockets(call_id=call_id, role=role, channel_name=channel_name, now=now)
    connection.save()
    _event(call_id, CallEventKind.JOINED, role=role, actor=user)
    if role in selectors.MEDIA_ROLES:
        roles = selectors.connected_roles(call_id, now)
        if all(r in roles for r in selectors.MEDIA_ROLES):
            call_start(call_id=call_id, now=now)
    _push_state(call_id)
    return connection


def call_heartbeat(*, connection_id: int) -> None:
    with transaction.atomic():
        CallConnection.objects.filter(pk=connection_id, left_at__isnull=True).update(
            last_seen_at=timezone.now()
        )


@transaction.atomic
def call_connection_mute(*, connection_id: int, muted: bool) -> bool:
    """A participant turned their microphone off or on: everyone on the call is told."""
    connection = CallConnection.objects.filter(pk=connection_id, left_at__isnull=True).first()
    if connection is None or connection.role not in selectors.MEDIA_ROLES:
        return False
    if connection.muted != muted:
        CallConnection.objects.filter(pk=connection_id).update(muted=muted)
        _push_state(connection.call_id)
    return True


@transaction.atomic
def call_leave(*, connection_id: int, dropped: bool = False) -> bool:
    """Close a socket's row. The call ends (completed) when, after it started, the last
    of family and prisoner leaves on purpose; a drop keeps it open for a rejoin."""
    now = timezone.now()
    reason = "dropped" if dropped else "left"
    updated = CallConnection.objects.filter(pk=connection_id, left_at__isnull=True).update(
        left_at=now, left_reason=reason
    )
    if not updated:
        return False
    connection = CallConnection.objects.get(pk=connection_id)
    _event(
        connection.call_id,
        CallEventKind.DROPPED if dropped else CallEventKind.LEFT,
        role=connection.role,
        actor=connection.user,
    )
    if dropped and connection.role in selectors.MEDIA_ROLES:
        _alert_dropped_on_commit(connection.call_id, connection.role)
    if not dropped and connection.role in selectors.MEDIA_ROLES:
        roles = selectors.connected_roles(connection.call_id, now)
        if not any(r in roles for r in selectors.MEDIA_ROLES):
            started = Call.objects.filter(
                pk=connection.call_id, status__in=[CallStatus.LIVE, CallStatus.PAUSED]
            ).exists()
            if started:
                call_end(call_id=connection.call_id, reason=EndReason.COMPLETED)
                return True
    _push_state(connection.call_id)
    return True


def _alert_dropped_on_commit(call_id: uuid.UUID | str, role: str) -> None:
    """Staff get a 'participant dropped' alert if the participant is still gone after
    CALL_DROP_ALERT_GRACE_SECONDS (monitoring), counted from the committed drop."""

    def schedule() -> None:
        from monitoring.tasks import alert_if_still_dropped
        from purplevisits.later import run_later

        try:
            run_later(
                alert_if_still_dropped,
                seconds=settings.CALL_DROP_ALERT_GRACE_SECONDS,
                args=(str(call_id), role),
            )
        except Exception:  # a lost alert must not break the socket's clean-up
            logger.exception("could not raise a dropped alert for call %s", call_id)

    transaction.on_commit(schedule)


# --- State changes --------------------------------------------------------------------


@transaction.atomic
def call_start(*, call_id: uuid.UUID | str, now: datetime | None = None) -> bool:
    """waiting → live: the call lasts call_minutes from now, never past the slot's end."""
    now = now or timezone.now()
    call = selectors.call_with_booking(call_id)
    if call is None:
        return False
    minutes = call.booking.establishment.call_minutes
    ends_at = min(now + timedelta(minutes=minutes), call.booking.ends_at)
    updated = Call.objects.filter(pk=call_id, status=CallStatus.WAITING).update(
        status=CallStatus.LIVE, started_at=now, ends_at=ends_at
    )
    if updated:
        _event(call_id, CallEventKind.STARTED, role="system", detail={"ends_at": str(ends_at)})
        _push_state(call_id)
    return bool(updated)


@transaction.atomic
def call_pause(
    *,
    call_id: uuid.UUID | str,
    reason: str,
    actor: Actor = None,
    detail: dict[str, Any] | str | None = None,
) -> bool:
    """live → paused. A staff pause also takes over a face-check pause (then only staff
    can resume it). Returns whether anything changed."""
    if reason not in PauseReason.values:
        raise CallActionRefused("BAD_REASON", f"Unknown pause reason {reason!r}.")
    now = timezone.now()
    updated = Call.objects.filter(pk=call_id, status=CallStatus.LIVE).update(
        status=CallStatus.PAUSED, pause_reason=reason, paused_at=now
    )
    if not updated and reason == PauseReason.STAFF:
        updated = Call.objects.filter(
            pk=call_id, status=CallStatus.PAUSED, pause_reason=PauseReason.UNAPPROVED_FACE
        ).update(pause_reason=PauseReason.STAFF)
    if not updated:
        return False
    detail_dict = detail if isinstance(detail, dict) else ({"note": detail} if detail else {})
    note = detail if isinstance(detail, str) else ""
    _event(
        call_id,
        CallEventKind.PAUSED,
        role="monitor" if _user(actor) else "system",
        actor=actor,
        reason=reason,
        detail=detail_dict,
    )
    _audit(actor, AuditAction.CALL_PAUSE, call_id, reason=note or reason, detail=detail_dict)
    _push_state(call_id)
    return True


@transaction.atomic
def call_resume(
    *,
    call_id: uuid.UUID | str,
    actor: Actor = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> bool:
    """paused → live, giving the paused time back up to the slot's end.

    Without an actor (an automatic resume after a face check cleared) a staff pause
    stays paused.
    """
    now = timezone.now()
    call = Call.objects.select_for_update().select_related("booking").filter(pk=call_id).first()
    if call is None or call.status != CallStatus.PAUSED:
        return False
    if _user(actor) is None and call.pause_reason == PauseReason.STAFF:
        return False
    paused_for = now - (call.paused_at or now)
    ends_at = call.ends_at or call.booking.ends_at
    new_ends_at = min(ends_at + paused_for, call.booking.ends_at)
    updated = Call.objects.filter(pk=call_id, status=CallStatus.PAUSED).update(
        status=CallStatus.LIVE,
        pause_reason="",
        paused_at=None,
        paused_seconds=F("paused_seconds") + int(paused_for.total_seconds()),
        ends_at=new_ends_at,
    )
    if not updated:
        return False
    _event(
        call_id,
        CallEventKind.RESUMED,
        role="monitor" if _user(actor) else "system",
        actor=actor,
        reason=reason,
        detail={**(detail or {}), "paused_seconds": int(paused_for.total_seconds())},
    )
    _audit(actor, AuditAction.CALL_RESUME, call_id, reason=reason)
    _push_state(call_id)
    return True


_BOOKING_STATUS_AFTER = {
    EndReason.COMPLETED: BookingStatus.COMPLETED,
    EndReason.TIME_UP: BookingStatus.COMPLETED,
    EndReason.TERMINATED: BookingStatus.TERMINATED,
    EndReason.REVOKED: BookingStatus.TERMINATED,
    EndReason.NO_SHOW: BookingStatus.NO_SHOW,
}


@transaction.atomic
def call_end(*, call_id: uuid.UUID | str, reason: str, actor: Actor = None, note: str = "") -> bool:
    """Any open state → ended. The booking records how it went."""
    if reason not in EndReason.values:
        raise CallActionRefused("BAD_REASON", f"Unknown end reason {reason!r}.")
    now = timezone.now()
    updated = Call.objects.filter(pk=call_id, status__in=OPEN_STATUSES).update(
        status=CallStatus.ENDED, end_reason=reason, ended_at=now, paused_at=None
    )
    if not updated:
        return False
    call = Call.objects.get(pk=call_id)
    booking_status = _BOOKING_STATUS_AFTER.get(EndReason(reason))
    if booking_status is not None:
        # The booking's outcome follows the call's; only a still-confirmed booking moves.
        Booking.objects.filter(pk=call.booking_id, status=BookingStatus.CONFIRMED).update(
            status=booking_status
        )
    CallConnection.objects.filter(call_id=call_id, left_at__isnull=True).update(
        left_at=now, left_reason="ended"
    )
    _event(
        call_id,
        CallEventKind.ENDED,
        role="monitor" if _user(actor) else "system",
        actor=actor,
        reason=note or reason,
        detail={"end_reason": reason},
    )
    _push_state(call_id)
    return True


@transaction.atomic
def call_terminate(*, call_id: uuid.UUID | str, actor: Actor = None, reason: str) -> bool:
    """Staff end a call at once. A reason is required (it goes in the audit log)."""
    reason = (reason or "").strip()
    if not reason:
        raise CallActionRefused("REASON_REQUIRED", gettext("Give a reason for ending the call."))
    if len(reason) > REASON_MAX_CHARS:
        raise CallActionRefused("REASON_TOO_LONG", gettext("The reason is too long."))
    ended = call_end(call_id=call_id, reason=EndReason.TERMINATED, actor=actor, note=reason)
    if ended:
        _audit(actor, AuditAction.CALL_TERMINATE, call_id, reason=reason)
    return ended


@transaction.atomic
def call_message(*, call_id: uuid.UUID | str, actor: Actor, text: str) -> bool:
    """A short staff message shown to both sides."""
    text = (text or "").strip()
    if not text:
        raise CallActionRefused("TEXT_REQUIRED", gettext("Write a message to send."))
    if len(text) > MESSAGE_MAX_CHARS:
        raise CallActionRefused(
            "TEXT_TOO_LONG",
            gettext("A message can be at most %(MESSAGE_MAX_CHARS)s characters.")
            % {"MESSAGE_MAX_CHARS": MESSAGE_MAX_CHARS},
        )
    if not Call.objects.filter(pk=call_id, status__in=OPEN_STATUSES).exists():
        return False
    _event(call_id, CallEventKind.MESSAGE, role="monitor", actor=actor, detail={"text": text})
    _audit(actor, AuditAction.CALL_MESSAGE, call_id, detail={"text": text})
    group_send_on_commit(call_group(call_id), {"type": "call.message", "text": text})
    return True


def call_expire(*, call_id: uuid.UUID | str, now: datetime | None = None) -> bool:
    """End a call whose time is up (idempotent: the relay and every socket may ask).

    A live call ends at ``ends_at``; a paused one at the slot's end (its paused time
    would be given back only up to there); one nobody started ends at the slot's end
    as a no-show.
    """
    now = now or timezone.now()
    call = selectors.call_with_booking(call_id)
    if call is None or call.status == CallStatus.ENDED:
        return False
    slot_end = call.booking.ends_at
    if call.status == CallStatus.LIVE and call.ends_at and now >= call.ends_at:
        return call_end(call_id=call_id, reason=EndReason.TIME_UP)
    if call.status == CallStatus.PAUSED and now >= slot_end:
        return call_end(call_id=call_id, reason=EndReason.TIME_UP)
    if call.status == CallStatus.WAITING and now >= slot_end:
        return call_end(call_id=call_id, reason=EndReason.NO_SHOW)
    return False


@transaction.atomic
def call_end_for_revoked_connection(*, connection_id: int) -> int:
    """A visitor's approval was revoked: end at once every open call that uses it."""
    call_ids = list(
        Call.objects.filter(
            booking__connection_id=connection_id, status__in=OPEN_STATUSES
        ).values_list("pk", flat=True)
    )
    return sum(call_end(call_id=call_id, reason=EndReason.REVOKED) for call_id in call_ids)


@transaction.atomic
def call_assign_relay(
    *, call_id: uuid.UUID | str, relay_id: str, relay_channel: str, expected_relay_id: str
) -> bool:
    """Pin a call to a relay, unless someone else re-pinned it meanwhile."""
    return bool(
        Call.objects.filter(pk=call_id, relay_id=expected_relay_id).update(
            relay_id=relay_id, relay_channel=relay_channel
        )
    )


def _audit(
    actor: Actor,
    action: str,
    call_id: uuid.UUID | str,
    *,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Staff actions go in the audit log; automatic ones (no actor) are call events only."""
    if _user(actor) is None:
        return
    call = Call.objects.select_related("booking__establishment").get(pk=call_id)
    audit_record(
        actor=actor,
        action=action,
        establishment=call.booking.establishment,
        target=call,
        reason=reason[:REASON_MAX_CHARS],
        detail=detail,
    )


__all__ = [
    "CallActionRefused",
    "CallRefused",
    "CallRole",
    "call_accept_aup",
    "call_assign_relay",
    "call_check_joinable",
    "call_end",
    "call_end_for_revoked_connection",
    "call_expire",
    "call_heartbeat",
    "call_join",
    "call_leave",
    "call_message",
    "call_open",
    "call_pause",
    "call_resume",
    "call_start",
    "call_terminate",
]


def terminal_create_login(*, terminal_id: int) -> tuple[User, str]:
    """Give a terminal (prison laptop) its own sign-in; returns the user and a new random
    password, shown once. A terminal that already has a login gets a new password."""
    import secrets

    from allauth.account.models import EmailAddress

    from establishments.models import Terminal

    password = secrets.token_urlsafe(15)
    with transaction.atomic():
        terminal = (
            Terminal.objects.select_for_update().select_related("establishment").get(pk=terminal_id)
        )
        user = terminal.user
        if user is None:
            email = f"terminal-{terminal.pk}@{terminal.establishment.code}.terminals.invalid"
            user = User(username=email, email=email, first_name=terminal.name[:150])
            user.set_password(password)
            user.full_clean()
            user.save()
            # Terminals sign in with this address; there is no inbox to confirm it.
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
            Terminal.objects.filter(pk=terminal.pk).update(user=user)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
    return user, password
