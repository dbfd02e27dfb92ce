"""The one push helper works from sync code and from code on a running event loop."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from purplevisits.realtime import group_send_now


async def test_a_push_from_code_on_a_running_loop_is_delivered() -> None:
    """A user saved inside a consumer's loop (post_save → close the user's sockets) used
    to fail with "You cannot use AsyncToSync in the same thread as an async event loop"."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("realtime.test", channel)
    group_send_now("realtime.test", {"type": "pushed", "n": 1})
    message = await asyncio.wait_for(layer.receive(channel), timeout=30)
    assert message == {"type": "pushed", "n": 1}
    await layer.group_discard("realtime.test", channel)


@pytest.mark.django_db(transaction=True)
def test_a_push_from_sync_code_is_delivered() -> None:
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("realtime.sync", channel)
    group_send_now("realtime.sync", {"type": "pushed", "n": 2})
    message = async_to_sync(asyncio.wait_for)(layer.receive(channel), 30)
    assert message == {"type": "pushed", "n": 2}
