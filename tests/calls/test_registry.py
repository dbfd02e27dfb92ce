"""Relay assignment: least loaded live relay, pinned on the Call row, re-pinned when dead."""

from __future__ import annotations

import os
import time

import pytest
from django.core.management import CommandError, call_command

from calls import services
from calls.models import Call
from calls.relay import registry as registry_module
from calls.relay.registry import LocalRegistry, RedisRegistry, RelayInfo, RelayUnavailable
from tests.calls.conftest import make_setup


@pytest.fixture(params=["local", "redis"])
def registry(request, settings, monkeypatch):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = False
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("needs REDIS_URL")
        reg: LocalRegistry | RedisRegistry = RedisRegistry(url, key=f"pv-test-relays-{os.getpid()}")
        reg._redis.delete(reg._key)
    else:
        reg = LocalRegistry()
    monkeypatch.setattr(registry_module, "get_registry", lambda: reg)
    yield reg
    if isinstance(reg, RedisRegistry):
        reg._redis.delete(reg._key)


def new_call() -> Call:
    return services.call_open(booking=make_setup().booking)


@pytest.mark.django_db
def test_no_relay_is_a_clear_error(registry) -> None:  # type: ignore[no-untyped-def]
    call = new_call()
    with pytest.raises(RelayUnavailable):
        registry_module.relay_channel_for_call(call.pk)


@pytest.mark.django_db
def test_calls_go_to_the_least_loaded_live_relay_and_stay_there(registry) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    registry.announce(RelayInfo("a", "relay.a!1", 3, now))
    registry.announce(RelayInfo("b", "relay.b!1", 1, now))
    first = new_call()
    assert registry_module.relay_channel_for_call(first.pk) == "relay.b!1"
    first.refresh_from_db()
    assert (first.relay_id, first.relay_channel) == ("b", "relay.b!1")
    # b's load was bumped (2): the next call goes to b again, then they alternate.
    second = new_call()
    assert registry_module.relay_channel_for_call(second.pk) == "relay.b!1"
    third = new_call()
    assert registry_module.relay_channel_for_call(third.pk) == "relay.a!1"  # a=3, b=3: by id
    # A pinned call keeps its relay whatever the loads.
    registry.announce(RelayInfo("b", "relay.b!1", 50, now))
    assert registry_module.relay_channel_for_call(first.pk) == "relay.b!1"


@pytest.mark.django_db
def test_a_silent_relay_is_dropped_and_its_calls_repinned(registry) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    registry.announce(RelayInfo("a", "relay.a!1", 0, now))
    call = new_call()
    assert registry_module.relay_channel_for_call(call.pk) == "relay.a!1"
    registry.announce(RelayInfo("a", "relay.a!1", 1, now - registry_module.DEAD_AFTER_SECONDS - 1))
    registry.announce(RelayInfo("c", "relay.c!1", 5, now))
    assert [info.relay_id for info in registry.live()] == ["c"]
    assert registry_module.relay_channel_for_call(call.pk) == "relay.c!1"
    call.refresh_from_db()
    assert call.relay_id == "c"


def test_runrelay_needs_redis(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("runrelay")
