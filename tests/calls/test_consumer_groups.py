"""A call socket that lost its group (Redis restarted) rejoins it on its next heartbeat."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from calls import services
from calls.routing import websocket_urlpatterns
from purplevisits.realtime import call_group
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


async def _next(communicator: WebsocketCommunicator, kind: str) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=3)
        if message["type"] == kind:
            return message


async def _types_within(communicator: WebsocketCommunicator, seconds: float) -> list[str]:
    """Types of the messages that arrive within ``seconds`` (the ticker may send state)."""
    types = []
    while not await communicator.receive_nothing(timeout=seconds):
        types.append((await communicator.receive_json_from(timeout=1))["type"])
    return types


async def test_a_heartbeat_rejoins_the_call_group_after_the_layer_forgot_it(tsetup) -> None:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    call = await sync_to_async(services.call_open)(booking=tsetup.booking)
    communicator = WebsocketCommunicator(application, f"/ws/calls/{call.pk}/")
    communicator.scope["user"] = tsetup.family
    communicator.scope["session"] = await sync_to_async(factories.socket_session)(tsetup.family)
    connected, _ = await communicator.connect()
    assert connected
    await _next(communicator, "state")
    layer = get_channel_layer()
    group = call_group(call.pk)
    push = {"type": "call.message", "text": "hello", "sender": "staff"}

    # What a Redis restart does to channels_redis: the group is gone, the socket is not.
    channel = await sync_to_async(lambda: call.connections.get(left_at__isnull=True).channel_name)()
    await layer.group_discard(group, channel)
    await layer.group_send(group, push)
    assert "message" not in await _types_within(communicator, 0.3)

    await communicator.send_json_to({"type": "heartbeat"})
    assert "message" not in await _types_within(communicator, 0.3)
    await layer.group_send(group, push)
    assert (await _next(communicator, "message"))["text"] == "hello"
    await communicator.disconnect()
