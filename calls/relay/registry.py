"""Which relay processes are alive, how loaded, and which one owns a call.

Relay processes announce themselves (id, channel-layer name, load) every
``HEARTBEAT_SECONDS``; one silent for ``DEAD_AFTER_SECONDS`` is dropped. A call is pinned
to the least loaded live relay (Call.relay_id / relay_channel, a conditional update);
when its relay has died the next offer re-pins it. With RELAY_IN_PROCESS (the embedded
`make run` setup) the registry is this process's memory and holds the one in-process
relay; otherwise it is a Redis hash shared by every web and relay process.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

# A relay killed mid-call must be replaced within 10 s (issue 8): it is noticed missing
# DEAD_AFTER_SECONDS after its last announcement, the participants' sockets check
# about once a second (calls/consumers.py) and their browsers re-offer at once. Four
# missed announcements in a row, not one slow one, count as death.
HEARTBEAT_SECONDS = 1.0
DEAD_AFTER_SECONDS = 4.0


class RelayUnavailable(Exception):
    code = "relay_unavailable"
    message = "No media relay is running. Try again in a moment."


@dataclass
class RelayInfo:
    relay_id: str
    channel: str
    load: int
    seen: float


class LocalRegistry:
    def __init__(self) -> None:
        self._relays: dict[str, RelayInfo] = {}
        self._lock = threading.Lock()

    def announce(self, info: RelayInfo) -> None:
        with self._lock:
            self._relays[info.relay_id] = info

    def withdraw(self, relay_id: str) -> None:
        with self._lock:
            self._relays.pop(relay_id, None)

    def bump(self, relay_id: str) -> None:
        with self._lock:
            if relay_id in self._relays:
                self._relays[relay_id].load += 1

    def live(self) -> list[RelayInfo]:
        cutoff = time.time() - DEAD_AFTER_SECONDS
        with self._lock:
            for relay_id in [r for r, i in self._relays.items() if i.seen < cutoff]:
                del self._relays[relay_id]
            return [RelayInfo(**asdict(info)) for info in self._relays.values()]


class RedisRegistry:
    def __init__(self, url: str, key: str = "pv:relays") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._key = key

    def announce(self, info: RelayInfo) -> None:
        self._redis.hset(self._key, info.relay_id, json.dumps(asdict(info)))

    def withdraw(self, relay_id: str) -> None:
        self._redis.hdel(self._key, relay_id)

    def bump(self, relay_id: str) -> None:
        # Count a new assignment before the relay's next heartbeat reports it, so a burst
        # of calls spreads over the relays instead of piling onto the same one.
        raw: Any = self._redis.hget(self._key, relay_id)
        if raw:
            info = RelayInfo(**json.loads(raw))
            info.load += 1
            self._redis.hset(self._key, relay_id, json.dumps(asdict(info)))

    def live(self) -> list[RelayInfo]:
        cutoff = time.time() - DEAD_AFTER_SECONDS
        result = []
        entries: Any = self._redis.hgetall(self._key)
        for relay_id, raw in entries.items():
            info = RelayInfo(**json.loads(raw))
            if info.seen < cutoff:
                self._redis.hdel(self._key, relay_id)
            else:
                result.append(info)
        return result


_local = LocalRegistry()


def get_registry() -> LocalRegistry | RedisRegistry:
    if settings.RELAY_IN_PROCESS or not settings.REDIS_URL:
        return _local
    return _redis_registry(settings.REDIS_URL, settings.RELAY_REGISTRY_KEY)


@functools.lru_cache(maxsize=4)
def _redis_registry(url: str, key: str) -> RedisRegistry:
    # One client (and connection pool) per process: every call socket asks about its
    # relay once a second, and a new client per question would open a new connection.
    return RedisRegistry(url, key=key)


def new_relay_id() -> str:
    return uuid.uuid4().hex[:12]


def relay_is_live(channel: str) -> bool:
    """Whether the relay listening on ``channel`` still announces itself."""
    return any(info.channel == channel for info in get_registry().live())


def relay_channel_for_call(
    call_id: uuid.UUID | str, *, in_process: tuple[str, str] | None = None
) -> str:
    """The channel of the live relay that owns ``call_id``, pinning it if needed.

    ``in_process`` is (relay_id, channel) of the relay inside this process (embedded
    setup): every call goes to it.
    """
    from calls.models import Call
    from calls.services import call_assign_relay

    if in_process is not None:
        relay_id, channel = in_process
        call = Call.objects.only("relay_id").get(pk=call_id)
        if call.relay_id != relay_id:
            call_assign_relay(
                call_id=call_id,
                relay_id=relay_id,
                relay_channel=channel,
                expected_relay_id=call.relay_id,
            )
        return channel
    registry = get_registry()
    for _attempt in range(3):
        call = Call.objects.only("relay_id", "relay_channel").get(pk=call_id)
        live = {info.relay_id: info for info in registry.live()}
        if call.relay_id in live:
            return live[call.relay_id].channel
        if not live:
            raise RelayUnavailable
        best = min(live.values(), key=lambda info: (info.load, info.relay_id))
        if call_assign_relay(
            call_id=call_id,
            relay_id=best.relay_id,
            relay_channel=best.channel,
            expected_relay_id=call.relay_id,
        ):
            registry.bump(best.relay_id)
            return best.channel
    raise RelayUnavailable
