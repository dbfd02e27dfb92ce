"""The establishment dashboard socket: a snapshot on connect, then pushed changes.

Services push `dashboard.call` / `dashboard.alert` (ids only) to the establishment's
group after commit; this consumer re-reads the row and sends the tile, so what the
officer sees always comes from PostgreSQL, never from the message itself.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import translation
from django.utils.translation import gettext

from monitoring import dashboard
from monitoring.selectors import DashboardAccess, dashboard_access
from purplevisits.i18n import language_from_scope
from purplevisits.realtime import establishment_group
from purplevisits.socket_json import Refusal, socket_message
from purplevisits.socket_sessions import SessionRulesMixin

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096


class DashboardConsumer(SessionRulesMixin, AsyncWebsocketConsumer):
    access: DashboardAccess | None = None
    group: str = ""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Tiles, alerts and errors in the officer's language (the page's: cookie, else
        # the browser's). Tiles are read again from the database for each socket, so
        # every officer reads their own language whoever caused the change.
        with translation.override(language_from_scope(self.scope)):
            await super().dispatch(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            await self.close(code=4401)
            return
        # Two-factor passed for staff, idle and absolute limits (as HTTP).
        if not await self.session_open():
            await self.close(code=4401)
            return
        code = self.scope["url_route"]["kwargs"]["code"]
        self.access = await database_sync_to_async(dashboard_access)(user, code)
        if self.access is None:
            await self.close(code=4403)
            return
        self.group = establishment_group(self.access.establishment.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_snapshot()

    async def disconnect(self, code: int) -> None:
        await self.session_close()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))

    async def _error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _send_snapshot(self) -> None:
        if self.access is None:
            return
        data = await database_sync_to_async(dashboard.snapshot)(self.access.establishment)
        data["can_control"] = self.access.can_control
        await self._send(data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Size and depth bounded before parsing (purplevisits/socket_json.py).
        message = socket_message(text_data, max_bytes=MAX_MESSAGE_BYTES)
        if isinstance(message, Refusal):
            await self._error(message.code, message.message)
            return
        # Permission is checked again on every message: a role can be removed mid-shift.
        user = self.scope["user"]
        code = self.scope["url_route"]["kwargs"]["code"]
        self.access = await database_sync_to_async(dashboard_access)(user, code)
        if self.access is None:
            await self.close(code=4403)
            return
        kind = message.get("type")
        # A person's own act (not a heartbeat) re-checks the session and counts as use.
        if kind in ("refresh", "ack") and not await self.session_activity():
            return
        if kind == "refresh":
            await self._send_snapshot()
        elif kind == "ack":
            await self._acknowledge(message.get("alert"))
        elif kind == "heartbeat":
            await self._send({"type": "heartbeat"})
        else:
            await self._error("unknown_type", gettext("Unknown message type."))

    async def _acknowledge(self, alert_id: Any) -> None:
        if self.access is None or not self.access.can_control:
            await self._error("forbidden", gettext("Headquarters staff can watch but not act."))
            return
        if not isinstance(alert_id, int) or isinstance(alert_id, bool):
            await self._error("bad_message", gettext("ack needs the alert's id."))
            return
        establishment_id = self.access.establishment.pk
        done = await database_sync_to_async(_acknowledge)(
            alert_id, self.scope["user"], establishment_id
        )
        if done is None:
            await self._error("not_found", gettext("No such alert here."))

    # --- pushed by services through the channel layer ---------------------------------
    async def dashboard_call(self, event: dict[str, Any]) -> None:
        found = await database_sync_to_async(dashboard.tile_for_call)(event.get("call_id", ""))
        if found and self.access and found[0] == self.access.establishment.pk:
            await self._send({"type": "call", "call": found[1]})

    async def dashboard_alert(self, event: dict[str, Any]) -> None:
        found = await database_sync_to_async(dashboard.alert_for_push)(event.get("alert_id", 0))
        if found and self.access and found[0] == self.access.establishment.pk:
            await self._send({"type": "alert", "alert": found[1]})


def _acknowledge(alert_id: int, user: Any, establishment_id: int) -> bool | None:
    from monitoring.models import Alert
    from monitoring.services import alert_acknowledge

    if not Alert.objects.filter(pk=alert_id, establishment_id=establishment_id).exists():
        return None
    return alert_acknowledge(alert_id=alert_id, actor=user)
