"""The one place that pushes to websockets (CONVENTIONS.md #6).

Services call these inside their transaction; the message goes out after commit, so
nobody is told about a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def establishment_group(establishment_id: int) -> str:
    return f"establishment.{establishment_id}"


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call.{call_id}"


def session_group(session_key: str) -> str:
    """The sockets opened with one session (the key is a secret: only its hash is used)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def user_group(user_id: int | str) -> str:
    """Every socket of one user, whatever the session."""
    return f"user.{user_id}"


# Consumers using purplevisits.socket_sessions.SessionRulesMixin close on this message.
SESSION_END = "session.end"


def sockets_close_for_session(*, session_key: str | None, reason: str) -> None:
    """Close every socket opened with this session (after commit)."""
    if session_key:
        group_send_on_commit(session_group(session_key), {"type": SESSION_END, "reason": reason})


def sockets_close_for_user(*, user_id: int | str, reason: str) -> None:
    """Close every socket of this user, in every session (after commit)."""
    group_send_on_commit(user_group(user_id), {"type": SESSION_END, "reason": reason})


_pending: set[asyncio.Task[Any]] = set()


def _layer_call(name: str, target: str, message: dict[str, Any]) -> None:
    """``layer.group_send`` or ``layer.send`` now, from sync code or from a running loop.

    From code running on an event loop (a consumer's own thread) the send goes out from
    that loop instead of blocking it (async_to_sync refuses to run there).
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is None:
            async_to_sync(getattr(layer, name))(target, message)
        else:
            task = loop.create_task(getattr(layer, name)(target, message))
            _pending.add(task)
            task.add_done_callback(_sent)
    except Exception:  # a lost push must not undo a committed change; pages catch up
        logger.exception("%s to %s failed", name, target)


def _sent(task: asyncio.Task[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("channel layer send failed", exc_info=task.exception())


def group_send_now(group: str, message: dict[str, Any]) -> None:
    _layer_call("group_send", group, message)


def group_send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: group_send_now(group, message))


def channel_send_on_commit(channel: str, message: dict[str, Any]) -> None:
    """Send to one socket (its channel name) after commit; a lost send is only logged."""
    transaction.on_commit(lambda: _layer_call("send", channel, message))
