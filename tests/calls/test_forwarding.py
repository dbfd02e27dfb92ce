"""The relay forwards encoded media (issue 18), checked with real aiortc peers.

- What the prisoner's side receives is, byte for byte, what the family's browser
  encoded: no re-encoding anywhere on the way.
- Video is decoded only for the face checks (a video observer), audio never.
- While paused no live packet leaves a gated output (checked on every packet handed to
  aiortc's senders), the placeholder and silence go instead, and the resume waits
  for a keyframe which the relay asks the sender for.
- A new monitor gets a keyframe; a receiver's keyframe request (PLI) reaches the
  sending browser; the lowest receiver bitrate (REMB) is what the sender is asked for.
- A receiver's NACK is answered by the relay from the packets it sent (aiortc's RTP
  history), not passed on to the sending browser; packets lost on their way into the
  relay are NACKed to the sending browser and the frame completes.

Every wait is on events with a generous ceiling: the machine may be loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc.codecs.vpx import vp8_depayload
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket, RtpPacket

from calls.relay import forward
from calls.relay.call import RelayCall, RelayOfferError
from calls.relay.synthetic import SyntheticPeer, read_frame
from calls.relay.tracks import OutputTrack, opus_silence, placeholder_keyframe

SLOW = 90  # a ceiling for a loaded machine, not the expected time


async def until(condition: Callable[[], bool], ceiling: float = SLOW) -> None:
    async def run() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(run(), ceiling)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Call:
    def __init__(self, relay: RelayCall) -> None:
        self.relay = relay
        self.peers: list[SyntheticPeer] = []

    async def join(self, peer: SyntheticPeer, role: str, channel: str | None = None) -> None:
        self.peers.append(peer)
        offer = await peer.offer()
        sdp, _tracks = await self.relay.offer(role=role, channel=channel or role, sdp=offer)
        await peer.answer(sdp)

    def outputs(self, channel: str, kind: str) -> list[OutputTrack]:
        return [o for o in self.relay.peers[channel].outputs if o.kind == kind]


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    relay = RelayCall("forwarding")
    relay.apply_state({"status": "live"})
    state = Call(relay)
    try:
        yield state
    finally:
        await relay.close()
        for peer in state.peers:
            await peer.close()


def video_sender(peer: SyntheticPeer):  # type: ignore[no-untyped-def]
    return next(s for s in peer.pc.getSenders() if s.track is not None and s.kind == "video")


def record_encoded(peer: SyntheticPeer) -> set[str]:
    """Digests of every VP8 frame ``peer``'s aiortc sender encodes (test-side wrapper)."""
    sent: set[str] = set()
    sender = video_sender(peer)
    original = sender._next_encoded_frame

    async def recording(codec):  # type: ignore[no-untyped-def]
        encoded = await original(codec)
        if encoded is not None:
            sent.add(digest(b"".join(vp8_depayload(p) for p in encoded.payloads)))
        return encoded

    sender._next_encoded_frame = recording
    return sent


def tap_incoming_video(peer: SyntheticPeer) -> tuple[list[str], forward.ReceiverControl]:
    """Digests of the whole VP8 frames ``peer`` receives (its receiver still decodes)."""
    received: list[str] = []
    transceiver = next(t for t in peer.pc.getTransceivers() if t.kind == "video")
    tap, control = forward.tap_receiver(transceiver.receiver, "video", lambda: True)
    tap.sink = lambda frame: received.append(digest(frame.data))
    return received, control


async def test_video_reaches_the_other_side_as_the_browser_encoded_it(call: Call) -> None:
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    sent = record_encoded(family)
    await prisoner.offer()
    received, _ = tap_incoming_video(prisoner)  # before the answer: receivers not started
    await call.join(family, "family")
    sdp, _ = await call.relay.offer(
        role="prisoner", channel="prisoner", sdp=prisoner.pc.localDescription.sdp
    )
    call.peers.append(prisoner)
    await prisoner.answer(sdp)
    await prisoner.wait_for("family", count=10, timeout=SLOW)
    placeholders = {
        digest(placeholder_keyframe(o.waiting_text, (20, 20, 20)))
        for o in call.outputs("prisoner", "video")
    }
    live = [d for d in received if d not in placeholders]
    assert len(live) >= 10
    assert set(live) <= sent, "a frame reached the prisoner that the family's browser never encoded"


async def test_video_is_decoded_only_for_the_face_checks_and_audio_never(call: Call) -> None:
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    await prisoner.wait_for("family", count=10, timeout=SLOW)
    taps = {(side, kind): r for side, kind, r in _taps(call)}
    assert taps[("family", "video")].frames >= 10
    assert taps[("family", "video")].decoded == 0
    assert taps[("family", "audio")].frames >= 10

    seen: list[str] = []
    remove = call.relay.add_video_observer(
        "family", lambda frame: seen.append(read_frame(frame)[0])
    )
    await until(lambda: seen.count("family") >= 5)
    remove()
    assert taps[("family", "video")].decoded >= 5
    assert taps[("prisoner", "video")].decoded == 0
    assert taps[("family", "audio")].decoded == taps[("prisoner", "audio")].decoded == 0


def _taps(call: Call) -> list[tuple[str, str, forward.ReceiverTap]]:
    found = []
    for peer in call.relay.peers.values():
        for transceiver in peer.pc.getTransceivers():
            queue = vars(transceiver.receiver).get("_RTCRtpReceiver__decoder_queue")
            if isinstance(queue, forward.ReceiverTap):
                found.append((peer.role, transceiver.kind, queue))
    return found


async def test_no_live_packet_passes_while_paused(call: Call, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    log: list[tuple[str, str, bool]] = []  # (kind, what, gate open) per packet sent
    original = OutputTrack.recv

    async def recording(self: OutputTrack):  # type: ignore[no-untyped-def]
        packet = await original(self)
        if self.gate is not None:
            data = bytes(packet)
            placeholder = (
                data == opus_silence()
                if self.kind == "audio"
                else data
                in (
                    placeholder_keyframe(),
                    placeholder_keyframe(self.waiting_text, (20, 20, 20)),
                )
            )
            log.append((self.kind, "placeholder" if placeholder else "live", self.gate.open))
        return packet

    monkeypatch.setattr(OutputTrack, "recv", recording)
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    await family.wait_for("prisoner", count=5, timeout=SLOW)

    call.relay.apply_state({"status": "paused"})
    mark = len(log)
    await prisoner.wait_for("paused", count=3, timeout=SLOW)
    await family.wait_for("paused", count=3, timeout=SLOW)
    paused_log = log[mark:]
    assert [e for e in paused_log if e[1] == "live" and not e[2]] == []
    assert any(e[0] == "audio" and e[1] == "placeholder" for e in paused_log)
    assert any(e[0] == "video" and e[1] == "placeholder" for e in paused_log)

    call.relay.apply_state({"status": "live"})
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    await family.wait_for("prisoner", count=5, timeout=SLOW)
    # Every gated video output waited for a keyframe after the resume, and asked for it.
    for channel in ("family", "prisoner"):
        output = call.outputs(channel, "video")[0]
        assert output.keyframe_waits, f"{channel}'s output never recorded its resume"
    assert call.relay.sources[("family", "video")].keyframe_requests >= 1
    assert [e for e in log if e[1] == "live" and not e[2]] == []


async def test_a_new_monitor_gets_a_keyframe_and_both_sides(call: Call) -> None:
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    requests = call.relay.sources[("family", "video")].keyframe_requests
    monitor = SyntheticPeer("family", send=False)
    await call.join(monitor, "monitor", "monitor-1")
    await until(
        lambda: (
            monitor.received.kinds.get("family", 0) >= 5
            and monitor.received.kinds.get("prisoner", 0) >= 5
        )
    )
    for output in call.outputs("monitor-1", "video"):
        assert output.keyframe_waits, (
            f"the monitor's {output.side} video never started on a keyframe"
        )
    assert call.relay.sources[("family", "video")].keyframe_requests > requests


async def test_a_receivers_keyframe_request_reaches_the_sending_browser(call: Call) -> None:
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    asked: list[int] = []
    sender = video_sender(family)
    original = sender._send_keyframe
    sender._send_keyframe = lambda: (asked.append(1), original())[1]
    await prisoner.offer()
    _, prisoner_control = tap_incoming_video(prisoner)
    await call.join(family, "family")
    sdp, _ = await call.relay.offer(
        role="prisoner", channel="prisoner", sdp=prisoner.pc.localDescription.sdp
    )
    call.peers.append(prisoner)
    await prisoner.answer(sdp)
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    before = len(asked)
    await asyncio.sleep(forward.ReceiverControl.PLI_INTERVAL)
    assert prisoner_control.request_keyframe()  # the prisoner's browser lost the picture
    await until(lambda: len(asked) > before)


async def test_the_sender_is_asked_for_what_the_worst_receiver_can_take(call: Call) -> None:
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    monitor = SyntheticPeer("family", send=False)
    await call.join(monitor, "monitor", "monitor-1")
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    control = call.relay.sources[("family", "video")].control
    assert control is not None
    monitor_output = next(o for o in call.outputs("monitor-1", "video") if o.side == "family")
    call.outputs("prisoner", "video")[0].bitrate_reported(900_000)
    monitor_output.bitrate_reported(300_000)  # what the monitor's REMB would say
    assert control.cap == 300_000
    await until(lambda: control.last_remb == 300_000)
    # The family's aiortc encoder follows REMB: it now aims at the monitor's bitrate.
    encoder = vars(video_sender(family)).get("_RTCRtpSender__encoder")
    await until(lambda: encoder is not None and encoder.target_bitrate == 300_000)
    # The monitor leaves: the cap is the prisoner's again.
    await call.relay.leave("monitor-1")
    assert control.cap == 900_000


async def test_an_offer_without_vp8_is_refused_plainly(call: Call) -> None:
    family = SyntheticPeer("family")
    call.peers.append(family)
    offer = await family.offer()
    h264_only = offer.replace("VP8/90000", "H264/90000")
    with pytest.raises(RelayOfferError) as caught:
        await call.relay.offer(role="family", channel="family", sdp=h264_only)
    assert caught.value.code == "bad_sdp"
    assert "VP8" in caught.value.message


# --- NACKs: answered from the relay's packet cache (issue 18) ---------------------------


def _payload_types(transceiver) -> tuple[int, int | None]:  # type: ignore[no-untyped-def]
    """(VP8, its RTX) payload types negotiated on a video transceiver."""
    codecs = transceiver._codecs
    vp8 = next(c.payloadType for c in codecs if c.mimeType.lower() == "video/vp8")
    rtx = next(
        (
            c.payloadType
            for c in codecs
            if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == vp8
        ),
        None,
    )
    return vp8, rtx


def _video_transceiver(pc):  # type: ignore[no-untyped-def]
    return next(t for t in pc.getTransceivers() if t.kind == "video")


def record_rtp_in(receiver) -> list[RtpPacket]:  # type: ignore[no-untyped-def]
    """Every RTP packet reaching ``receiver``, as it came (RTX still wrapped)."""
    log: list[RtpPacket] = []
    original = receiver._handle_rtp_packet

    async def recording(packet: RtpPacket, arrival_time_ms: int) -> None:
        log.append(packet)
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording
    return log


def record_nacks(sender) -> list[int]:  # type: ignore[no-untyped-def]
    """Sequence numbers of every generic NACK reaching ``sender`` (it still handles them)."""
    lost: list[int] = []
    original = sender._handle_rtcp_packet

    async def recording(packet) -> None:  # type: ignore[no-untyped-def]
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            lost.extend(packet.lost)
        await original(packet)

    sender._handle_rtcp_packet = recording
    return lost


def record_retransmits(sender) -> list[int]:  # type: ignore[no-untyped-def]
    """Sequence numbers ``sender`` was asked to retransmit from its history."""
    asked: list[int] = []
    original = sender._retransmit

    async def recording(sequence_number: int) -> None:
        asked.append(sequence_number)
        await original(sequence_number)

    sender._retransmit = recording
    return asked


def original_of(packet: RtpPacket, rtx: int | None) -> tuple[int, bytes]:
    """(sequence number, payload) of a packet, or of the packet an RTX packet carries."""
    if rtx is not None and packet.payload_type == rtx:
        return int.from_bytes(packet.payload[:2], "big"), packet.payload[2:]
    return packet.sequence_number, packet.payload


async def test_a_receivers_nack_is_answered_from_the_relays_packet_cache(call: Call) -> None:
    """The relay's sender keeps what it sent (aiortc's RTP history, the packet cache):
    a receiving browser's NACK for a forwarded packet gets that packet again, from the
    relay, and never reaches the browser that encoded it."""
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    family_nacks = record_nacks(video_sender(family))
    family_retransmits = record_retransmits(video_sender(family))
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    transceiver = _video_transceiver(prisoner.pc)
    arrived = record_rtp_in(transceiver.receiver)
    relay_sender = _video_transceiver(call.relay.peers["prisoner"].pc).sender
    assert getattr(relay_sender, "_relay_hooked", False), "forward.hook_sender is installed"
    relay_retransmits = record_retransmits(relay_sender)
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    vp8, rtx = _payload_types(transceiver)
    assert rtx is not None, "the relay's answer keeps VP8's RTX"
    await until(lambda: any(p.payload_type == vp8 for p in arrived))

    # The prisoner's browser lost the last forwarded packet it got: it sends a NACK.
    target = next(p for p in reversed(arrived) if p.payload_type == vp8)
    mark = len(arrived)
    await transceiver.receiver._send_rtcp_nack(target.ssrc, [target.sequence_number])

    def resent() -> list[RtpPacket]:
        return [
            p
            for p in arrived[mark:]
            if p.payload_type == rtx and original_of(p, rtx)[0] == target.sequence_number
        ]

    await until(lambda: bool(resent()))
    assert original_of(resent()[0], rtx) == (target.sequence_number, target.payload)
    assert target.sequence_number in relay_retransmits
    await asyncio.sleep(0.5)  # time for a NACK passed on to reach the family's browser
    assert family_nacks == [], "a receiver's NACK reached the browser that encoded the video"
    assert family_retransmits == []


async def test_packets_lost_on_the_way_in_are_nacked_and_the_frame_still_passes(
    call: Call,
) -> None:
    """The relay as a receiver: a packet from the family's browser lost on its way in
    is NACKed (aiortc's NACK generator, beside forward.py's jitter buffer), the browser
    retransmits it, and the frame it belongs to completes: no gap given up on, no frame
    dropped, no keyframe needed."""
    family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
    family_nacks = record_nacks(video_sender(family))
    family_retransmits = record_retransmits(video_sender(family))
    await call.join(family, "family")
    await call.join(prisoner, "prisoner")
    relay_transceiver = _video_transceiver(call.relay.peers["family"].pc)
    receiver = relay_transceiver.receiver
    buffer = vars(receiver)["_RTCRtpReceiver__jitter_buffer"]
    assert isinstance(buffer, forward.MarkerJitterBuffer)
    vp8, rtx = _payload_types(relay_transceiver)
    assert rtx is not None

    armed = False
    dropped: list[int] = []
    resent: list[tuple[int, bytes]] = []
    lost_payload: dict[int, bytes] = {}
    original = receiver._handle_rtp_packet

    async def lossy(packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type == vp8 and armed and not dropped:
            dropped.append(packet.sequence_number)  # lost on the network
            lost_payload[packet.sequence_number] = packet.payload
            return
        if packet.payload_type == rtx:
            resent.append(original_of(packet, rtx))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = lossy
    await prisoner.wait_for("family", count=5, timeout=SLOW)
    source = call.relay.sources[("family", "video")]
    delivered: list[forward.EncodedFrame] = []
    deliver = source.deliver

    def recording(frame: forward.EncodedFrame) -> None:
        delivered.append(frame)
        deliver(frame)

    source.deliver = recording  # type: ignore[method-assign]
    skipped, dropped_frames = buffer.skipped, buffer.dropped
    armed = True
    await until(lambda: bool(dropped))
    lost = dropped[0]
    await until(lambda: lost in family_nacks)  # the relay asked the family's browser
    await until(lambda: any(seq == lost for seq, _ in resent))
    assert lost in family_retransmits
    assert dict(resent)[lost] == lost_payload[lost]
    # Frames go on past the loss: the retransmission filled the gap.
    count = len(delivered)
    await until(lambda: len(delivered) >= count + 5)
    assert buffer.skipped == skipped, "the jitter buffer gave up on the gap"
    assert buffer.dropped == dropped_frames
    assert not any(frame.after_loss for frame in delivered)
    await prisoner.wait_for("family", count=5, timeout=SLOW)
