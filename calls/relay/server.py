"""A relay process's main loop: offers and state changes arrive on its channel.

Messages it handles (sent through the channel layer):

- ``relay.offer`` {call_id, role, channel, sdp}: answer a participant's offer; the
  answer goes to ``channel`` as ``call.answer`` {sdp, tracks}, a refusal as
  ``call.relay_error`` {code, message}.
- ``relay.leave`` {call_id, channel}: close that participant's peer.
- ``call.state`` (the relay joins each of its calls' groups): open or close the gate,
  move the timer, and close every peer when the call has ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.utils.module_loading import import_string

from calls.relay import forward
from calls.relay.call import RelayCall, RelayOfferError, placeholder_texts
from calls.relay.registry import (
    HEARTBEAT_SECONDS,
    LocalRegistry,
    RedisRegistry,
    RelayInfo,
    get_registry,
    new_relay_id,
)
from calls.relay.tracks import warm_placeholders
from purplevisits.realtime import call_group

logger = logging.getLogger(__name__)


def _load_state(call_id: str) -> dict[str, Any] | None:
    from calls.selectors import call_state_payload, call_with_booking

    call = call_with_booking(call_id)
    return call_state_payload(call) if call is not None else None


def _expire(call_id: str) -> bool:
    from calls.services import call_expire

    return call_expire(call_id=call_id)


class RelayServer:
    def __init__(
        self,
        *,
        registry: LocalRegistry | RedisRegistry | None = None,
        layer: BaseChannelLayer | None = None,
        relay_id: str | None = None,
    ) -> None:
        self.registry = registry or get_registry()
        self.layer = layer or get_channel_layer()
        self.relay_id = relay_id or new_relay_id()
        self.channel = ""
        self.calls: dict[str, RelayCall] = {}
        self.hooks = [import_string(path) for path in settings.RELAY_CALL_HOOKS]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        if self.layer is None:
            raise RuntimeError("the relay needs a channel layer (CHANNEL_LAYERS)")
        self.channel = await self.layer.new_channel("relay.")
        forward.check_hooks()  # an aiortc upgrade that moved a hook stops here, by name
        await asyncio.to_thread(warm_placeholders, placeholder_texts())
        await self._announce()
        self._tasks = [
            asyncio.ensure_future(self._receive_loop()),
            asyncio.ensure_future(self._heartbeat_loop()),
        ]
        logger.info("relay %s listening on %s", self.relay_id, self.channel)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for relay_call in list(self.calls.values()):
            await relay_call.close()
        self.calls.clear()
        await database_sync_to_async(self.registry.withdraw, thread_sensitive=False)(self.relay_id)

    @property
    def load(self) -> int:
        return len(self.calls)

    async def _announce(self) -> None:
        info = RelayInfo(self.relay_id, self.channel, self.load, time.time())
        await database_sync_to_async(self.registry.announce, thread_sensitive=False)(info)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._announce()
            except Exception:
                logger.exception("relay heartbeat failed")

    async def _receive_loop(self) -> None:
        if self.layer is None:
            raise RuntimeError("the relay needs a channel layer")
        while not self._stopping:
            message = await self.layer.receive(self.channel)
            asyncio.ensure_future(self._handle_safely(message))

    async def _handle_safely(self, message: dict[str, Any]) -> None:
        try:
            await self.handle(message)
        except Exception:
            # One bad message never takes the relay (or any other call) down.
            logger.exception("relay failed on a %s message", message.get("type"))

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        call_id = str(message.get("call_id", ""))
        if kind == "relay.offer":
            await self._offer(call_id, message)
        elif kind == "relay.leave":
            relay_call = self.calls.get(call_id)
            if relay_call is not None:
                await relay_call.leave(message["channel"])
        elif kind == "call.state":
            relay_call = self.calls.get(call_id)
            if relay_call is None:
                return
            relay_call.apply_state(message)
            if message.get("status") == "ended":
                await self._drop_call(call_id)

    async def _offer(self, call_id: str, message: dict[str, Any]) -> None:
        if self.layer is None:
            raise RuntimeError("the relay needs a channel layer")
        reply = message["channel"]
        try:
            relay_call = await self._get_call(call_id)
            sdp, tracks = await relay_call.offer(
                role=message["role"], channel=reply, sdp=message["sdp"]
            )
        except RelayOfferError as exc:
            await self.layer.send(
                reply, {"type": "call.relay_error", "code": exc.code, "message": exc.message}
            )
            return
        await self.layer.send(reply, {"type": "call.answer", "sdp": sdp, "tracks": tracks})

    async def _get_call(self, call_id: str) -> RelayCall:
        relay_call = self.calls.get(call_id)
        if relay_call is not None:
            return relay_call
        state = await database_sync_to_async(_load_state)(call_id)
        if state is None or state["status"] == "ended":
            raise RelayOfferError("call_ended", "The call has ended.")
        relay_call = self.calls.get(call_id)  # another offer may have created it meanwhile
        if relay_call is not None:
            return relay_call
        relay_call = RelayCall(call_id, on_expire=database_sync_to_async(_expire))
        self.calls[call_id] = relay_call
        if self.layer is None:
            raise RuntimeError("the relay needs a channel layer")
        await self.layer.group_add(call_group(call_id), self.channel)
        relay_call.apply_state(state)
        for hook in self.hooks:
            try:
                hook(relay_call)
            except Exception:
                logger.exception("relay call hook %r failed", hook)
        await self._announce()
        return relay_call

    async def _drop_call(self, call_id: str) -> None:
        relay_call = self.calls.pop(call_id, None)
        if relay_call is None:
            return
        await relay_call.close()
        if self.layer is not None:
            await self.layer.group_discard(call_group(call_id), self.channel)
        await self._announce()


# --- the embedded setup: one relay inside the web process, on its event loop ----------

_in_process: dict[asyncio.AbstractEventLoop, RelayServer] = {}
_in_process_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def ensure_in_process_relay() -> RelayServer | None:
    """Start (once per event loop) the relay that runs inside this process."""
    if not settings.RELAY_IN_PROCESS:
        return None
    loop = asyncio.get_running_loop()
    for other in [lp for lp in _in_process if lp.is_closed()]:
        _in_process.pop(other, None)
        _in_process_lock.pop(other, None)
    server = _in_process.get(loop)
    if server is not None:
        return server
    lock = _in_process_lock.setdefault(loop, asyncio.Lock())
    async with lock:
        server = _in_process.get(loop)
        if server is None:
            # Its own layer instance: with channels_redis, two readers of process-local
            # channels sharing one instance lost the relay's first message in tests.
            # (An in-memory layer must stay shared: it exists only in that instance.)
            from channels import DEFAULT_CHANNEL_LAYER
            from channels.layers import InMemoryChannelLayer, channel_layers

            shared = get_channel_layer()
            own = (
                shared
                if isinstance(shared, InMemoryChannelLayer)
                else channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            )
            server = RelayServer(layer=own)
            await server.start()
            _in_process[loop] = server
    return server


async def stop_in_process_relay() -> None:
    loop = asyncio.get_running_loop()
    server = _in_process.pop(loop, None)
    if server is not None:
        await server.stop()
