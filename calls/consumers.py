"""The signalling socket of one participant (SIGNALLING.md, docs/signalling.md).

Thin: authorisation and state changes are the services' and selectors' job; media is
the relay's. The consumer checks every message (size, rate, JSON, type, SDP, role),
re-checks the sender's permission each time, forwards offers to the call's relay, and
passes the call's news (``call.*`` group messages) on to the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from calls import selectors, services
from calls.labels import alert_label, state_labels
from calls.models import CallRole, CallStatus, PauseReason
from calls.relay.registry import RelayUnavailable, relay_channel_for_call, relay_is_live
from calls.relay.server import ensure_in_process_relay
from calls.sdp import SdpError, check_offer
from purplevisits.i18n import language_from_scope
from purplevisits.realtime import call_group
from purplevisits.socket_json import Refusal, socket_message
from purplevisits.socket_sessions import SessionRulesMixin

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
# SIGNALLING.md: "a participant silent for 15 s counts as disconnected", and a browser
# that vanishes must be detected within 15 s. The watchdog wakes at the deadline itself
# (not on the next 1 s tick, which measured 15.1 s) with half a second in hand for the
# close and the database write. Clients send a heartbeat every 5 s.
HEARTBEAT_TIMEOUT = 14.5
HEARTBEAT_WRITE_EVERY = 10.0
OFFER_TIMEOUT = 20.0
# How often a socket whose media goes through a separate relay process checks that the
# relay is still alive (a Redis read); a dead one makes the browser re-offer at once.
RELAY_CHECK_EVERY = 1.0
# Token bucket: a burst of RATE_BURST messages, then RATE_PER_SECOND. A client that
# keeps going past RATE_STRIKES refusals is closed (4429); the call goes on.
RATE_BURST = 20
RATE_PER_SECOND = 5.0
RATE_STRIKES = 10
WARNING_MINUTES = (5, 1)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_HEARTBEAT = 4408
CLOSE_OUTSIDE_WINDOW = 4409
CLOSE_ENDED = 4410
CLOSE_FLOOD = 4429
# The same side opened the call again elsewhere (another tab or device): this older
# socket is closed and its client should not reconnect (docs/signalling.md).
CLOSE_REPLACED = 4412


def _authorise(call_id: str, user: Any) -> tuple[str, dict[str, Any]]:
    """(role, state) for a user joining now, or CallRefused with the close code."""
    call = selectors.call_with_booking(call_id)
    if call is None:
        raise services.CallRefused(
            "NO_SUCH_CALL", gettext("There is no such call."), CLOSE_NOT_FOUND
        )
    role = selectors.call_role_for_user(call, user)
    if role is None:
        raise services.CallRefused(
            "NOT_PARTICIPANT", gettext("This is not your call."), CLOSE_FORBIDDEN
        )
    if call.status == CallStatus.ENDED:
        raise services.CallRefused("CALL_ENDED", call.end_reason or "completed", CLOSE_ENDED)
    try:
        services.call_check_joinable(booking=call.booking)
    except services.CallRefused as refusal:
        if refusal.close_code == CLOSE_ENDED:
            services.call_expire(call_id=call.pk)
        raise
    return role, selectors.call_state_payload(call)


def _recheck(call_id: str, user: Any) -> tuple[str | None, str, str]:
    """(role, status, end_reason) now: permission is re-checked on every message."""
    call = selectors.call_with_booking(call_id)
    if call is None:
        return None, CallStatus.ENDED, "failed"
    return selectors.call_role_for_user(call, user), call.status, call.end_reason


def _state(call_id: str) -> dict[str, Any] | None:
    call = selectors.call_with_booking(call_id)
    return selectors.call_state_payload(call) if call is not None else None


def _record_control_refusal(call_id: str, user: Any, action: Any, code: str, text: str) -> None:
    from monitoring.services import control_refusal_record

    try:
        control_refusal_record(
            actor=user,
            call=selectors.call_with_booking(call_id),
            action=str(action or ""),
            code=code,
            message=text,
            channel="socket",
        )
    except Exception:  # logging a refusal must never break the socket
        logger.exception("could not record a refused control on call %s", call_id)


def _alerts_for_monitor(call_id: str) -> list[dict[str, Any]]:
    from monitoring.selectors import call_alerts_for_monitor

    return call_alerts_for_monitor(call_id)


def _event_payload(event_id: Any) -> dict[str, Any] | None:
    from calls.models import CallEvent

    if not isinstance(event_id, int) or isinstance(event_id, bool):
        return None
    event = CallEvent.objects.select_related("actor").filter(pk=event_id).first()
    return selectors.call_event_payload(event) if event is not None else None


def _relay_channel(call_id: str, in_process: tuple[str, str] | None) -> str:
    return relay_channel_for_call(call_id, in_process=in_process)


class CallConsumer(SessionRulesMixin, AsyncWebsocketConsumer):
    role: str = ""
    call_id: str = ""
    connection_id: int | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Messages to people (errors, refusals) in the page's language.
        with translation.override(language_from_scope(self.scope)):
            await super().dispatch(message)

    async def connect(self) -> None:
        # Accept first so that refusals carry the contract's close codes (a refused
        # handshake would reach the browser as a bare 1006).
        await self.accept()
        self.call_id = str(self.scope["url_route"]["kwargs"]["call_id"])
        self.state: dict[str, Any] = {}
        self.warned: set[int] = set()
        self.closing = False
        self.last_heard = time.monotonic()
        self.last_written = time.monotonic()
        self.tokens = float(RATE_BURST)
        self.tokens_at = time.monotonic()
        self.strikes = 0
        self.offer_sent_at: float | None = None
        self.offered = False
        self.relay_channel: str | None = None  # a separate relay process's, once offered
        self.relay_checked = 0.0
        self.ticker: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        # Signed in, two-factor passed for staff, idle and absolute limits (as HTTP).
        if not await self.session_open():
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        try:
            self.role, state = await database_sync_to_async(_authorise)(self.call_id, user)
        except services.CallRefused as refusal:
            if refusal.close_code == CLOSE_ENDED:
                reason = refusal.message if refusal.code == "CALL_ENDED" else "completed"
                await self._send({"type": "ended", "reason": _end_reason(reason)})
            await self._close(refusal.close_code)
            return
        await self.channel_layer.group_add(call_group(self.call_id), self.channel_name)
        connection = await database_sync_to_async(services.call_join)(
            call_id=self.call_id, role=self.role, user=user, channel_name=self.channel_name
        )
        self.connection_id = connection.pk
        state = await database_sync_to_async(_state)(self.call_id) or state
        await self._send_state(state)
        if self.role == CallRole.MONITOR:
            # What monitors were told before this one came (face checks off, a stranger…).
            for alert in await database_sync_to_async(_alerts_for_monitor)(self.call_id):
                await self._send(alert)
        self.ticker = asyncio.ensure_future(self._tick())

    async def disconnect(self, code: int) -> None:
        await self.session_close()
        if self.ticker is not None:
            self.ticker.cancel()
        if not self.call_id:
            return
        await self.channel_layer.group_discard(call_group(self.call_id), self.channel_name)
        if self.connection_id is not None:
            await database_sync_to_async(services.call_leave)(
                connection_id=self.connection_id, dropped=True
            )
            await self._tell_relay({"type": "relay.leave"})

    async def session_refuse(self) -> None:
        await self._close(CLOSE_UNAUTHENTICATED)

    # --- client messages -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.connection_id is None:
            return
        self.last_heard = time.monotonic()
        if not self._take_token():
            self.strikes += 1
            if self.strikes >= RATE_STRIKES:
                await self._error(
                    "rate_limited", gettext("Too many messages: the connection is closed.")
                )
                await self._close(CLOSE_FLOOD)
            else:
                await self._error("rate_limited", gettext("Too many messages: slow down."))
            return
        # Size and depth bounded before parsing (purplevisits/socket_json.py).
        message = socket_message(text_data, max_bytes=MAX_MESSAGE_BYTES)
        if isinstance(message, Refusal):
            await self._error(message.code, message.message)
            return
        handler = {
            "offer": self._on_offer,
            "heartbeat": self._on_heartbeat,
            "control": self._on_control,
            "leave": self._on_leave,
            "mute": self._on_mute,
        }.get(message["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown message type {message['type'][:40]!r}.")
            return
        role, status, end_reason = await database_sync_to_async(_recheck)(self.call_id, self.user)
        if role is None or role != self.role:
            await self._close(CLOSE_FORBIDDEN)
            return
        if status == CallStatus.ENDED:
            await self._send({"type": "ended", "reason": _end_reason(end_reason)})
            await self._close(CLOSE_ENDED)
            return
        # A person's own act (not a heartbeat) re-checks the session and counts as use.
        if message["type"] in ("offer", "control") and not await self.session_activity():
            return
        await handler(message)

    async def _on_offer(self, message: dict[str, Any]) -> None:
        sdp = message.get("sdp")
        try:
            check_offer(sdp, monitor=self.role == CallRole.MONITOR)
        except SdpError as exc:
            await self._error(exc.code, exc.message)
            return
        try:
            server = await ensure_in_process_relay()
            local = (server.relay_id, server.channel) if server is not None else None
            channel = await database_sync_to_async(_relay_channel)(self.call_id, local)
        except RelayUnavailable as exc:
            await self._error(exc.code, exc.message)
            return
        self.offer_sent_at = time.monotonic()
        self.offered = True
        self.relay_channel = channel if local is None else None
        await self.channel_layer.send(
            channel,
            {
                "type": "relay.offer",
                "call_id": self.call_id,
                "role": self.role,
                "channel": self.channel_name,
                "sdp": sdp,
            },
        )

    async def _on_heartbeat(self, message: dict[str, Any]) -> None:
        # Rejoin the call's group: a Redis restart loses channels_redis' groups while the
        # socket stays open, and the call's state pushes would no longer reach it
        # (bench/faults.py redis). group_add is idempotent and cheap.
        await self.channel_layer.group_add(call_group(self.call_id), self.channel_name)
        now = time.monotonic()
        if now - self.last_written >= HEARTBEAT_WRITE_EVERY and self.connection_id is not None:
            self.last_written = now
            await database_sync_to_async(services.call_heartbeat)(connection_id=self.connection_id)

    async def _on_control(self, message: dict[str, Any]) -> None:
        if self.role != CallRole.MONITOR:
            await self._log_control_refusal(message, "forbidden", "Not a staff monitor.")
            await self._error("forbidden", gettext("Only staff monitors can control a call."))
            return
        action = message.get("action")
        reason = message.get("reason") or ""
        text = message.get("text") or ""
        if not isinstance(reason, str) or not isinstance(text, str):
            await self._error("bad_control", gettext("'reason' and 'text' must be text."))
            return
        try:
            if action == "pause":
                done = await database_sync_to_async(services.call_pause)(
                    call_id=self.call_id, reason=PauseReason.STAFF, actor=self.user, detail=reason
                )
            elif action == "resume":
                done = await database_sync_to_async(services.call_resume)(
                    call_id=self.call_id, actor=self.user, reason=reason
                )
            elif action == "terminate":
                done = await database_sync_to_async(services.call_terminate)(
                    call_id=self.call_id, actor=self.user, reason=reason
                )
            elif action == "message":
                done = await database_sync_to_async(services.call_message)(
                    call_id=self.call_id, actor=self.user, text=text
                )
            else:
                await self._error("bad_control", gettext("Unknown control action."))
                return
        except services.CallActionRefused as refusal:
            await self._log_control_refusal(message, refusal.code.lower(), refusal.message)
            await self._error(refusal.code.lower(), refusal.message)
            return
        if not done:
            await self._error("not_applicable", f"The call cannot be '{action}'d now.")

    async def _log_control_refusal(self, message: dict[str, Any], code: str, text: str) -> None:
        """Refused controls go in the audit and security logs (monitoring)."""
        await database_sync_to_async(_record_control_refusal)(
            self.call_id, self.user, message.get("action"), code, text
        )

    async def _on_mute(self, message: dict[str, Any]) -> None:
        muted = message.get("muted")
        if self.role == CallRole.MONITOR:
            await self._error("forbidden", gettext("Staff monitors send no sound to mute."))
            return
        if not isinstance(muted, bool):
            await self._error("bad_mute", gettext("'muted' must be true or false."))
            return
        if self.connection_id is not None:
            await database_sync_to_async(services.call_connection_mute)(
                connection_id=self.connection_id, muted=muted
            )

    async def _on_leave(self, message: dict[str, Any]) -> None:
        if self.connection_id is not None:
            connection_id, self.connection_id = self.connection_id, None
            await database_sync_to_async(services.call_leave)(connection_id=connection_id)
            await self._tell_relay({"type": "relay.leave"})
        await self._close(1000)

    # --- news for this socket (channel layer) ----------------------------------------

    async def call_state(self, event: dict[str, Any]) -> None:
        await self._send_state(event)

    async def call_message(self, event: dict[str, Any]) -> None:
        await self._send({"type": "message", "text": event.get("text", "")})

    async def call_alert(self, event: dict[str, Any]) -> None:
        if self.role == CallRole.MONITOR:
            payload = {k: v for k, v in event.items() if k != "type"}
            # In this monitor's language, whatever the sender's was.
            payload["label"] = alert_label(str(payload.get("kind", "")), payload.get("side"))
            await self._send({"type": "alert", **payload})

    async def call_replaced(self, event: dict[str, Any]) -> None:
        # call_join closed this socket's row already: leaving it is not a drop.
        self.connection_id = None
        await self._tell_relay({"type": "relay.leave"})
        await self._error(
            "replaced", gettext("The call was opened in another window or on another device.")
        )
        await self._close(CLOSE_REPLACED)

    async def call_event(self, event: dict[str, Any]) -> None:
        # What happened on the call, for the officer's page; staff emails stay with staff.
        if self.role == CallRole.MONITOR:
            sent = event.get("event", {})
            # The summary again from the row, in this monitor's language.
            relabelled = await database_sync_to_async(_event_payload)(sent.get("id"))
            await self._send({"type": "event", **(relabelled or sent)})

    async def call_answer(self, event: dict[str, Any]) -> None:
        self.offer_sent_at = None
        await self._send({"type": "answer", "sdp": event["sdp"], "tracks": event["tracks"]})

    async def call_relay_error(self, event: dict[str, Any]) -> None:
        self.offer_sent_at = None
        await self._error(event.get("code", "relay_error"), event.get("message", ""))

    # --- helpers -------------------------------------------------------------------

    async def _send_state(self, state: dict[str, Any]) -> None:
        if self.closing:
            return
        self.state = state
        payload = state_labels({k: v for k, v in state.items() if k != "type"})
        payload["server_time"] = timezone.now().isoformat()
        await self._send({"type": "state", **payload})
        if state.get("status") == CallStatus.ENDED:
            self.connection_id = None  # the services closed every connection row
            await self._send({"type": "ended", "reason": _end_reason(state.get("end_reason"))})
            await self._close(CLOSE_ENDED)

    async def _tick(self) -> None:
        """Heartbeat watchdog, time warnings and the end of time (once a second)."""
        try:
            while not self.closing:
                silent_until = self.last_heard + HEARTBEAT_TIMEOUT - time.monotonic()
                await asyncio.sleep(min(1.0, max(0.0, silent_until)))
                now_mono = time.monotonic()
                if now_mono - self.last_heard >= HEARTBEAT_TIMEOUT:
                    # Silent for too long: counts as disconnected (a drop) at once.
                    if self.connection_id is not None:
                        connection_id, self.connection_id = self.connection_id, None
                        await database_sync_to_async(services.call_leave)(
                            connection_id=connection_id, dropped=True
                        )
                        await self._tell_relay({"type": "relay.leave"})
                    await self._close(CLOSE_HEARTBEAT)
                    return
                if self.relay_channel and now_mono - self.relay_checked >= RELAY_CHECK_EVERY:
                    self.relay_checked = now_mono
                    await self._check_relay()
                if self.offer_sent_at and now_mono - self.offer_sent_at > OFFER_TIMEOUT:
                    self.offer_sent_at = None
                    await self._error(
                        "relay_unavailable", gettext("The media relay did not answer.")
                    )
                await self._check_time()
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("call socket ticker failed")

    async def _check_time(self) -> None:
        status = self.state.get("status")
        now = timezone.now()
        ends_at = _parse(self.state.get("ends_at"))
        slot_ends_at = _parse(self.state.get("slot_ends_at"))
        if status == CallStatus.LIVE and ends_at is not None:
            left = (ends_at - now).total_seconds()
            for minutes in WARNING_MINUTES:
                if minutes not in self.warned and left <= minutes * 60:
                    self.warned.add(minutes)
                    if left > minutes * 60 - 30:  # a late joiner is not told of past ones
                        await self._send({"type": "warning", "minutes_left": minutes})
            if left <= 0:
                await database_sync_to_async(services.call_expire)(call_id=self.call_id)
        elif (
            status in (CallStatus.WAITING, CallStatus.PAUSED)
            and slot_ends_at is not None
            and now >= slot_ends_at
        ):
            await database_sync_to_async(services.call_expire)(call_id=self.call_id)

    async def _check_relay(self) -> None:
        """Tell the browser to re-offer when its relay process has died.

        The next offer re-pins the call to a live relay (registry); without this the
        browser would only notice when its peer connection fails, about 30 s later.
        """
        channel = self.relay_channel
        if channel is None:
            return
        try:
            live = await sync_to_async(relay_is_live, thread_sensitive=False)(channel)
        except Exception:  # the registry (Redis) is unreachable: say nothing yet
            logger.warning("relay check failed for call %s", self.call_id, exc_info=True)
            return
        if live or channel != self.relay_channel:
            return
        self.relay_channel = None
        self.offer_sent_at = None
        logger.warning("relay %s of call %s is gone: asking for a new offer", channel, self.call_id)
        await self._error("relay_unavailable", gettext("The media relay stopped. Reconnecting…"))

    async def _tell_relay(self, message: dict[str, Any]) -> None:
        if not self.offered:
            return  # the relay has no peer of ours
        try:
            server = await ensure_in_process_relay()
            local = (server.relay_id, server.channel) if server is not None else None
            channel = await database_sync_to_async(_relay_channel)(self.call_id, local)
        except Exception:  # no relay, or the call is gone: nothing to tell
            return
        await self.channel_layer.send(
            channel, {**message, "call_id": self.call_id, "channel": self.channel_name}
        )

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.tokens_at) * RATE_PER_SECOND)
        self.tokens_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def _error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _send(self, payload: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(payload))

    async def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)


def _end_reason(reason: str | None) -> str:
    allowed = {"completed", "terminated", "time_up", "revoked", "failed"}
    if reason == "no_show":
        return "time_up"
    return reason if reason in allowed else "completed"


def _parse(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None
