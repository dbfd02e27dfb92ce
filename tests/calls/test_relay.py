"""Real aiortc peers through the real relay (in-process), signalled by the consumer."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from calls import services
from calls.models import Call, PauseReason
from calls.relay import server as relay_server
from calls.relay.synthetic import SyntheticPeer
from tests.calls.test_consumer import next_of, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = 90  # seconds: a ceiling for a loaded machine, not the expected time


@pytest.fixture(autouse=True)
def _in_process_relay(settings):  # type: ignore[no-untyped-def]
    settings.RELAY_IN_PROCESS = True


@pytest.fixture
async def relay():  # type: ignore[no-untyped-def]
    server = await relay_server.ensure_in_process_relay()
    yield server
    await relay_server.stop_in_process_relay()


async def until(condition, ceiling: float = SLOW) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``condition()`` holds, checking often; fail after the ceiling."""

    async def run() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(run(), ceiling)


# Every 5 s, as the browser does (SIGNALLING.md): the consumer drops a socket silent for
# 14.5 s, and on a loaded machine one test's waits add up to more than that (the face
# relay test lost its prisoner side to it, as "dropped", with both cores busy).
HEARTBEAT_EVERY = 5.0
heartbeats: dict[int, asyncio.Task[None]] = {}


async def _heartbeat(communicator) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            await communicator.send_json_to({"type": "heartbeat"})


async def join(peer: SyntheticPeer, user, call_id):  # type: ignore[no-untyped-def]
    """A socket for ``user`` that offers ``peer``'s media and sends heartbeats until
    :func:`close_all` closes it."""
    communicator, connected = await open_socket(user, call_id)
    assert connected
    heartbeats[id(communicator)] = asyncio.ensure_future(_heartbeat(communicator))
    await next_of(communicator, "state")
    await communicator.send_json_to({"type": "offer", "sdp": await peer.offer()})
    answer = await next_of(communicator, "answer", timeout=SLOW)
    await peer.answer(answer["sdp"])
    return communicator, answer


async def pair(setup, call):  # type: ignore[no-untyped-def]
    family = SyntheticPeer("family")
    prisoner = SyntheticPeer("prisoner")
    family.other_track, prisoner.other_track = prisoner.video, family.video
    fam_socket, fam_answer = await join(family, setup.family, call.pk)
    pri_socket, _ = await join(prisoner, setup.terminal_user, call.pk)
    return family, prisoner, fam_socket, pri_socket, fam_answer


async def close_all(*things) -> None:  # type: ignore[no-untyped-def]
    for thing in things:
        if isinstance(thing, SyntheticPeer):
            await thing.close()
        else:
            beating = heartbeats.pop(id(thing), None)
            if beating is not None:
                beating.cancel()
            await thing.disconnect()


@pytest.fixture
def opened(tsetup):  # type: ignore[no-untyped-def]
    return tsetup, services.call_open(booking=tsetup.booking)


async def test_family_and_prisoner_receive_each_others_frames(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, answer = await pair(setup, call)
    assert set(answer["tracks"].values()) == {"prisoner"}
    await family.wait_for("prisoner", count=5)
    await prisoner.wait_for("family", count=5)
    # Numbers decoded from the frames match what the other side sent.
    assert family.received.latencies and prisoner.received.latencies
    relay_call = relay.calls[str(call.pk)]
    assert relay_call.frames_in["family"] > 0 and relay_call.frames_in["prisoner"] > 0
    await close_all(family, prisoner, fam_socket, pri_socket)


async def test_pause_swaps_to_the_placeholder_and_resume_swaps_back(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, _ = await pair(setup, call)
    monitor = SyntheticPeer("monitor", send=False)
    mon_socket, mon_answer = await join(monitor, setup.officer, call.pk)
    assert sorted(mon_answer["tracks"].values()) == ["family", "family", "prisoner", "prisoner"]
    await family.wait_for("prisoner")
    await monitor.wait_for("family")

    await sync_to_async(services.call_pause)(call_id=call.pk, reason=PauseReason.UNAPPROVED_FACE)
    await family.wait_for("paused")
    await prisoner.wait_for("paused")
    # Monitors keep receiving live media while paused.
    monitor.events = asyncio.Queue()
    await monitor.wait_for("family", count=1)

    await sync_to_async(services.call_resume)(call_id=call.pk)
    await family.wait_for("prisoner")
    await prisoner.wait_for("family")
    await close_all(family, prisoner, monitor, fam_socket, pri_socket, mon_socket)


async def test_the_timer_ends_the_call_and_closes_every_peer(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, _ = await pair(setup, call)
    await family.wait_for("prisoner")
    relay_call = relay.calls[str(call.pk)]
    relay_pcs = [peer.pc for peer in relay_call.peers.values()]
    assert len(relay_pcs) == 2
    # Short call: two seconds left.
    await sync_to_async(Call.objects.filter(pk=call.pk).update)(
        ends_at=timezone.now() + timedelta(seconds=2)
    )
    await sync_to_async(services._push_state_now)(call.pk)
    assert (await next_of(fam_socket, "ended", timeout=SLOW))["reason"] == "time_up"
    await asyncio.wait_for(relay_call.closed.wait(), SLOW)
    assert str(call.pk) not in relay.calls  # dropped before it is closed
    await until(lambda: all(pc.connectionState == "closed" for pc in relay_pcs))
    assert relay_call.peers == {}
    row = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert (row.status, row.end_reason) == ("ended", "time_up")
    await close_all(family, prisoner, fam_socket, pri_socket)


async def test_a_participant_rejoins_after_a_drop(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, _ = await pair(setup, call)
    await prisoner.wait_for("family")
    ends_at = (await sync_to_async(Call.objects.get)(pk=call.pk)).ends_at
    await close_all(family, fam_socket)  # the family's network goes
    await prisoner.wait_for("waiting")
    family = SyntheticPeer("family")
    family.other_track, prisoner.other_track = prisoner.video, family.video
    fam_socket, _ = await join(family, setup.family, call.pk)
    await prisoner.wait_for("family")
    await family.wait_for("prisoner")
    row = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert row.status == "live"
    assert row.ends_at == ends_at
    await close_all(family, prisoner, fam_socket, pri_socket)


async def test_an_unusable_sdp_gets_an_error_and_other_calls_go_on(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, _ = await pair(setup, call)
    await family.wait_for("prisoner")
    # Parses, but no codec the relay knows: the relay refuses it, nothing else changes.
    bad = (
        (await SyntheticPeer("family").offer())
        .replace("VP8/90000", "XYZ/90000")
        .replace("opus/48000", "xyz/48000")
        .replace("H264/90000", "XYZ/90000")
        .replace("PCMU/8000", "XYZ/8000")
        .replace("PCMA/8000", "XYZ/8000")
    )
    await fam_socket.send_json_to({"type": "offer", "sdp": bad})
    error = await next_of(fam_socket, "error", timeout=SLOW)
    assert error["code"] == "bad_sdp"
    await prisoner.wait_for("family")
    await close_all(family, prisoner, fam_socket, pri_socket)


async def test_video_observers_get_decoded_frames(opened, relay) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, prisoner, fam_socket, pri_socket, _ = await pair(setup, call)
    relay_call = relay.calls[str(call.pk)]
    seen: list[tuple[int, int]] = []
    remove = relay_call.add_video_observer("family", lambda f: seen.append((f.width, f.height)))
    relay_call.add_video_observer("prisoner", lambda f: 1 / 0)  # a broken observer is harmless
    await prisoner.wait_for("family", count=10)
    assert seen and seen[0] == (640, 480)
    remove()
    count = len(seen)
    await prisoner.wait_for("family", count=5)
    assert len(seen) == count
    with pytest.raises(ValueError):
        relay_call.add_video_observer("monitor", lambda f: None)
    await close_all(family, prisoner, fam_socket, pri_socket)
