"""The one place that pushes to websockets (CONVENTIONS.md #6).

Services call these inside their transaction; the message goes out after commit, so
nobody is told about a change that was rolled back.
"""

from __future__ import annotations

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


def group_send_now(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # a lost push must not undo a committed change; pages catch up
        logger.exception("group_send to %s failed", group)


def group_send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: group_send_now(group, message))


def channel_send_on_commit(channel: str, message: dict[str, Any]) -> None:
    """Send to one socket (its channel name) after commit; a lost send is only logged."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.send)(channel, message)
        except Exception:
            logger.exception("send to %s failed", channel)

    transaction.on_commit(send)
