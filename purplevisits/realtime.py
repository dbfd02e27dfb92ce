"""The one place that pushes to websockets (CONVENTIONS.md #6).

Services call these inside their transaction; the message goes out after commit, so
nobody is told about a change that was rolled back.
"""

from __future__ import annotations

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
