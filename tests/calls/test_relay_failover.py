"""A relay process killed mid-call: the sockets notice and ask their browsers to re-offer,
and the new offer goes to a live relay (bench/faults.py relay measures it end to end)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from calls import consumers, services
from calls.models import Call
from calls.relay import registry as registry_module
from calls.relay.registry import LocalRegistry, RelayInfo
from tests.calls.test_consumer import FINGERPRINT, SENDRECV_OFFER, next_of, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

OFFER = {
    "type": "offer",
    "sdp": SENDRECV_OFFER.format(direction="sendrecv", fingerprint=FINGERPRINT),
}


async def pinned_to(call_id, relay_id: str) -> Call:  # type: ignore[no-untyped-def]
    """The call once the consumer has pinned it to ``relay_id`` (a 30 s ceiling)."""
    deadline = time.monotonic() + 30
    while True:
        call = await sync_to_async(Call.objects.get)(pk=call_id)
        if call.relay_id == relay_id or time.monotonic() > deadline:
            return call
        await asyncio.sleep(0.05)


async def errors_within(communicator, seconds: float) -> list[str]:  # type: ignore[no-untyped-def]
    """The error codes the socket sends in the next ``seconds`` (other messages skipped)."""
    codes: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await communicator.receive_nothing(timeout=0.1):
            continue
        message = await communicator.receive_json_from()
        if message["type"] == "error":
            codes.append(message["code"])
    return codes


@pytest.fixture
def relays(settings, monkeypatch):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = False
    registry = LocalRegistry()
    monkeypatch.setattr(registry_module, "get_registry", lambda: registry)
    monkeypatch.setattr(consumers, "RELAY_CHECK_EVERY", 0.2)
    return registry


async def test_a_dead_relay_makes_the_browser_offer_again_to_a_live_one(tsetup, relays) -> None:  # type: ignore[no-untyped-def]
    call = await sync_to_async(services.call_open)(booking=tsetup.booking)
    relays.announce(RelayInfo("a", "relay.a!1", 0, time.time()))
    family, _ = await open_socket(tsetup.family, call.pk)
    await next_of(family, "state")
    await family.send_json_to(OFFER)
    pinned = await pinned_to(call.pk, "a")
    assert pinned.relay_id == "a"

    # While relay a announces itself, nothing is said.
    assert await errors_within(family, 0.8) == []

    # a stops announcing (SIGKILL); b is up.
    relays.withdraw("a")
    relays.announce(RelayInfo("b", "relay.b!1", 0, time.time()))
    error = await next_of(family, "error", timeout=30)
    assert error["code"] == "relay_unavailable"

    # The browser's new offer re-pins the call to b; the timer is untouched.
    await family.send_json_to(OFFER)
    assert await errors_within(family, 0.8) == []
    repinned = await pinned_to(call.pk, "b")
    assert repinned.relay_id == "b"
    assert (repinned.started_at, repinned.ends_at) == (pinned.started_at, pinned.ends_at)
    await family.disconnect()


async def test_sockets_of_an_in_process_relay_do_not_poll_the_registry(  # type: ignore[no-untyped-def]
    tsetup, settings, monkeypatch
) -> None:
    settings.RELAY_IN_PROCESS = True
    asked: list[str] = []
    monkeypatch.setattr(consumers, "relay_is_live", lambda channel: asked.append(channel) or False)
    monkeypatch.setattr(consumers, "RELAY_CHECK_EVERY", 0.1)
    call = await sync_to_async(services.call_open)(booking=tsetup.booking)
    family, _ = await open_socket(tsetup.family, call.pk)
    await next_of(family, "state")
    await family.send_json_to(OFFER)
    assert await errors_within(family, 1) == []
    assert asked == []
    await family.disconnect()
