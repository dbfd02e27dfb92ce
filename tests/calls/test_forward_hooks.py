"""The aiortc internals calls/relay/forward.py wraps: present, and loud when they move.

If one of these fails after an aiortc upgrade, read calls/relay/forward.py: each hook
is named in its docstring and in the error.
"""

from __future__ import annotations

import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from calls.relay import forward


def test_every_hook_is_where_the_relay_expects_it() -> None:
    forward.check_hooks()


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpReceiver, "_send_rtcp"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
    ],
)
def test_a_moved_hook_is_named(monkeypatch, cls, name) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delattr(cls, name)
    with pytest.raises(forward.AiortcHookMissing, match=name):
        forward.check_hooks()


def test_another_aiortc_version_is_refused_by_name(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(forward, "version", lambda package: "9.9.9")
    with pytest.raises(forward.AiortcHookMissing, match=r"aiortc 9\.9\.9"):
        forward.check_hooks()


def test_the_pinned_version_is_the_locked_one() -> None:
    from pathlib import Path

    lock = (Path(__file__).resolve().parents[2] / "requirements.lock").read_text()
    assert f"aiortc=={forward.AIORTC_VERSION}" in lock


async def test_a_receiver_without_its_private_attributes_is_refused_by_name() -> None:
    class Transport:
        state = "new"

    receiver = RTCRtpReceiver("video", Transport())  # type: ignore[arg-type]
    forward.check_receiver(receiver)  # as aiortc 1.16 builds it
    del receiver.__dict__["_RTCRtpReceiver__decoder_queue"]
    with pytest.raises(forward.AiortcHookMissing, match="decoder_queue"):
        forward.check_receiver(receiver)


# --- the marker-bit jitter buffer --------------------------------------------------


def vp8_packet(seq: int, ts: int, *, start: bool, marker: bool, body: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts)
    packet.marker = int(marker)
    packet.payload = bytes([0x10 if start else 0x00]) + body
    packet._data = body  # type: ignore[attr-defined]  # what aiortc's depayload leaves
    return packet


def test_a_frame_is_released_by_its_marker_packet_not_by_the_next_frame() -> None:
    buffer = forward.MarkerJitterBuffer()
    assert buffer.add(vp8_packet(10, 3000, start=True, marker=False, body=b"ab")) == (False, None)
    _, frame = buffer.add(vp8_packet(11, 3000, start=False, marker=True, body=b"cd"))
    assert frame is not None and (frame.data, frame.timestamp) == (b"abcd", 3000)
    _, frame = buffer.add(vp8_packet(12, 6000, start=True, marker=True, body=b"ef"))
    assert frame is not None and frame.data == b"ef"


def test_a_gap_waits_for_the_retransmission() -> None:
    buffer = forward.MarkerJitterBuffer()
    buffer.add(vp8_packet(1, 90, start=True, marker=True, body=b"x"))
    assert buffer.add(vp8_packet(2, 180, start=True, marker=False, body=b"a"))[1] is None
    assert buffer.add(vp8_packet(4, 180, start=False, marker=True, body=b"c"))[1] is None
    _, frame = buffer.add(vp8_packet(3, 180, start=False, marker=False, body=b"b"))
    assert frame is not None and frame.data == b"abc"


def test_a_gap_never_filled_is_given_up_on_and_a_keyframe_asked_for(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [100.0]
    monkeypatch.setattr(forward.time, "monotonic", lambda: clock[0])
    buffer = forward.MarkerJitterBuffer()
    assert buffer.add(vp8_packet(1, 90, start=True, marker=True, body=b"A"))[1] is not None
    buffer.add(vp8_packet(2, 180, start=True, marker=False, body=b"B1"))
    # 3 is lost for good; frame B's end and frame C arrive.
    assert buffer.add(vp8_packet(4, 180, start=False, marker=True, body=b"B3")) == (False, None)
    assert buffer.add(vp8_packet(5, 270, start=True, marker=True, body=b"C")) == (False, None)
    clock[0] += forward.MarkerJitterBuffer.GAP_WAIT / 2  # still waiting for the NACK
    assert buffer.add(vp8_packet(6, 360, start=True, marker=True, body=b"D")) == (False, None)
    clock[0] += forward.MarkerJitterBuffer.GAP_WAIT
    pli, frame = buffer.add(vp8_packet(7, 450, start=True, marker=True, body=b"E"))
    assert pli, "the sender is asked for a keyframe"
    assert frame is not None and frame.data == b"C" and frame.after_loss  # type: ignore[attr-defined]
    assert buffer.skipped == 1
    _, frame = buffer.add(vp8_packet(8, 540, start=True, marker=True, body=b"F"))
    assert frame is not None and frame.data == b"D" and not frame.after_loss  # type: ignore[attr-defined]


def test_a_frame_whose_start_was_lost_is_dropped() -> None:
    buffer = forward.MarkerJitterBuffer()
    # The first packet the relay sees is the middle of a frame.
    assert buffer.add(vp8_packet(7, 90, start=False, marker=True, body=b"tail"))[1] is None
    assert buffer.dropped == 1
    _, frame = buffer.add(vp8_packet(8, 180, start=True, marker=True, body=b"whole"))
    assert frame is not None and frame.data == b"whole"


def test_audio_packets_pass_at_once_and_late_ones_are_dropped() -> None:
    buffer = forward.AudioPassBuffer()

    def opus(seq: int) -> RtpPacket:
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet._data = bytes([seq])  # type: ignore[attr-defined]
        return packet

    assert buffer.add(opus(5))[1].data == b"\x05"  # type: ignore[union-attr]
    assert buffer.add(opus(7))[1].data == b"\x07"  # type: ignore[union-attr]
    assert buffer.add(opus(6))[1] is None  # late: 7 already went
    assert buffer.add(opus(7))[1] is None  # a duplicate


# --- offers: only what can be forwarded -----------------------------------------------

CHROME_LIKE = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=rtpmap:45 AV1/90000",
        "a=ssrc-group:FID 1 2",
        "",
    ]
)


def test_an_offer_keeps_only_opus_vp8_and_vp8s_rtx_and_every_other_line() -> None:
    kept = forward.forwardable_offer(CHROME_LIKE)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" in kept
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" in kept
    for gone in ("red/48000", "G722", "PCMU", "H264", "apt=102", "AV1", "rtpmap:103"):
        assert gone not in kept
    for stays in (
        "a=fmtp:111 minptime=10",
        "a=rtcp-fb:96 nack pli",
        "a=fmtp:97 apt=96",
        "a=extmap-allow-mixed",
        "a=ssrc-group:FID 1 2",
        "a=rtcp-mux",
    ):
        assert stays in kept


def test_an_offer_without_opus_is_refused() -> None:
    offer = CHROME_LIKE.replace("opus/48000/2", "ISAC/16000")
    with pytest.raises(forward.NoCommonCodec, match="Opus"):
        forward.forwardable_offer(offer)


# --- the decode tap ------------------------------------------------------------------


def test_the_decoder_never_falls_far_behind_and_the_end_goes_first() -> None:
    class Codec:
        name = "VP8"

    def frame(keyframe: bool) -> tuple[Codec, JitterFrame]:
        return Codec(), JitterFrame(data=bytes([0x00 if keyframe else 0x01]) + b"vp8", timestamp=0)

    asked: list[int] = []
    forwarded: list[bool] = []
    tap = forward.ReceiverTap("video", lambda: True)
    tap.on_overload = lambda: asked.append(1)
    tap.sink = lambda encoded: forwarded.append(encoded.keyframe)
    tap.put(frame(True))
    for _ in range(40):  # nobody decodes: the thread is starved
        tap.put(frame(False))
    assert tap.decoded == forward.ReceiverTap.DECODE_BACKLOG
    assert asked == [1], "one keyframe request when the backlog fills"
    assert len(forwarded) == 41, "forwarding never waits for decoding"
    tap.put(frame(False))  # still skipping: only a keyframe restarts decoding
    assert tap.decoded == forward.ReceiverTap.DECODE_BACKLOG
    tap.put(None)  # the receiver stops: its thread must not decode the backlog first
    assert tap.get(timeout=1) is None
