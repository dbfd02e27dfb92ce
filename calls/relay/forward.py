"""Every aiortc internal the forwarding relay relies on, in one place.

The relay forwards encoded media (an SFU): what a participant's browser sends is
depayloaded by aiortc's ``RTCRtpReceiver`` into whole encoded frames, and those frames
are handed to each ``RTCRtpSender`` towards the other participants as ``av.Packet``
objects, which aiortc packs into RTP without encoding (``Encoder.pack``). aiortc 1.16
has no public API for the receiving half nor for the feedback a forwarder must pass on,
so this module reaches into it, and nowhere else does:

- ``RTCRtpReceiver.__jitter_buffer``: replaced by :class:`MarkerJitterBuffer` (video:
  a frame is released as soon as its last packet, marked by the RTP marker bit, is in,
  instead of when the next frame's first packet arrives) and :class:`AudioPassBuffer`
  (audio: each Opus packet is released at once; aiortc's waits for 4).
- ``RTCRtpReceiver.__decoder_queue``: replaced by a :class:`ReceiverTap`, which gives
  every encoded frame to the relay and passes to aiortc's decoder thread only the video
  frames the face checks need decoded (none with face checks off, never audio).
- ``RTCRtpReceiver._send_rtcp_pli`` / ``_send_rtcp`` and ``__rtcp_ssrc``: keyframe
  requests (PLI) to the sending browser, and its REMB capped at what the worst receiver
  can take.
- ``RTCRtpSender._send_keyframe`` and ``_handle_rtcp_packet``: a receiving browser's
  PLI/FIR and REMB, which aiortc would apply to an encoder the relay does not use.

``check_hooks()`` raises :class:`AiortcHookMissing`, naming the hook, when an aiortc
upgrade moves one of them; tests/calls/test_forward_hooks.py calls it, and the relay
calls it before its first call. aiortc is pinned in requirements.lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.utils import uint16_add, uint16_gt

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"
# What the relay forwards: every participant must send these (VP8 and Opus are the
# codecs every WebRTC browser must implement, RFC 7742 and RFC 7874).
VIDEO_CODEC = "video/VP8"
AUDIO_CODEC = "audio/opus"
_MAIN_CODECS = (VIDEO_CODEC.lower(), AUDIO_CODEC.lower())
FORWARDED = {"video": {VIDEO_CODEC.lower(), "video/rtx"}, "audio": {AUDIO_CODEC.lower()}}

_RECEIVER_JITTER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_STARTED = "_RTCRtpReceiver__started"
_RECEIVER_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_RECEIVER_METHODS = ("_send_rtcp_pli", "_send_rtcp", "_handle_rtp_packet")
_SENDER_METHODS = ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame")


class AiortcHookMissing(RuntimeError):
    """An aiortc internal the relay wraps is not where calls/relay/forward.py expects."""


class NoCommonCodec(ValueError):
    """The offer lacks VP8 or Opus, which the relay forwards."""


def check_hooks() -> None:
    """Raise AiortcHookMissing, naming the hook, if aiortc no longer has one of them."""
    installed = version("aiortc")
    if installed != AIORTC_VERSION:
        raise AiortcHookMissing(
            f"calls/relay/forward.py wraps aiortc {AIORTC_VERSION} internals; "
            f"aiortc {installed} is installed: check every hook, then update AIORTC_VERSION"
        )
    for name in _RECEIVER_METHODS:
        if not callable(getattr(RTCRtpReceiver, name, None)):
            raise AiortcHookMissing(f"RTCRtpReceiver.{name} is gone")
    for name in _SENDER_METHODS:
        if not callable(getattr(RTCRtpSender, name, None)):
            raise AiortcHookMissing(f"RTCRtpSender.{name} is gone")
    for name in ("_remove_frame", "remove", "add"):
        if not callable(getattr(JitterBuffer, name, None)):
            raise AiortcHookMissing(f"JitterBuffer.{name} is gone")
    probe = JitterBuffer(capacity=16)
    for attribute in ("_origin", "_packets", "_capacity"):
        if not hasattr(probe, attribute):
            raise AiortcHookMissing(f"JitterBuffer.{attribute} is gone")


def check_receiver(receiver: RTCRtpReceiver) -> None:
    for attribute in (_RECEIVER_JITTER, _RECEIVER_QUEUE, _RECEIVER_STARTED, _RECEIVER_RTCP_SSRC):
        if attribute not in vars(receiver):
            raise AiortcHookMissing(f"RTCRtpReceiver has no {attribute.split('__')[-1]} attribute")


# --- the offer: only codecs that can be forwarded -------------------------------------


def forwardable_offer(sdp: str) -> str:
    """``sdp`` with every audio/video codec but Opus, VP8 (and VP8's RTX) removed.

    Each participant must send what the others can receive without re-encoding, so
    the relay's answers name only these. The offer's text is kept as it is but for the
    removed payload types (its m= lines and their rtpmap/fmtp/rtcp-fb lines). Raises
    NoCommonCodec if a section offers neither.
    """
    description = aiortc_sdp.SessionDescription.parse(sdp)
    keep: list[set[int] | None] = []
    for media in description.media:
        if media.kind not in FORWARDED:
            keep.append(None)
            continue
        main = {
            c.payloadType
            for c in media.rtp.codecs
            if c.mimeType.lower() in _MAIN_CODECS and c.payloadType is not None
        }
        if not main:
            wanted = "VP8" if media.kind == "video" else "Opus"
            raise NoCommonCodec(f"The {media.kind} section does not offer {wanted}.")
        rtx = {
            c.payloadType
            for c in media.rtp.codecs
            if c.mimeType.lower() == "video/rtx"
            and c.parameters.get("apt") in main
            and c.payloadType is not None
        }
        keep.append(main | rtx)
    lines = sdp.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    section = -1
    for line in lines:
        if line.startswith("m="):
            section += 1
        kept = keep[section] if 0 <= section < len(keep) else None
        if kept is not None:
            if line.startswith("m="):
                words = line.split()
                line = " ".join(
                    words[:3] + [w for w in words[3:] if w.isdigit() and int(w) in kept]
                )
            elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
                payload_type = line.split(":", 1)[1].split(" ", 1)[0]
                if payload_type != "*" and (
                    not payload_type.isdigit() or int(payload_type) not in kept
                ):
                    continue
        out.append(line)
    return "\r\n".join(out)


# --- receiving: whole encoded frames, at once -----------------------------------------


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    timestamp: int  # in the codec's clock, counted from the stream's first packet
    keyframe: bool
    arrived: float  # time.monotonic()
    after_loss: bool = False  # frames before it were lost: decodable only from a keyframe


def _vp8_frame_start(packet: RtpPacket) -> bool:
    """Whether an RTP packet starts a VP8 frame (descriptor S bit, partition 0)."""
    payload = packet.payload
    return bool(payload) and bool(payload[0] & 0x10) and (payload[0] & 0x07) == 0


def vp8_is_keyframe(data: bytes) -> bool:
    """A VP8 frame's P bit (RFC 6386 9.1): 0 for a keyframe."""
    return bool(data) and not (data[0] & 0x01)


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, releasing a frame when its marker packet is in.

    aiortc's own buffer releases a frame only when the next frame's first packet
    arrives: one frame interval (67 ms at 15 fps) added at every hop. Here a frame is
    released as soon as it is complete: its packets contiguous from the frame's first
    (VP8 S bit) to the one with the marker bit. A gap waits for the retransmission
    (NACK) for at most ``GAP_WAIT`` seconds; then the frames behind it move on from the
    next frame start (aiortc's would hold them until 512 packets had piled up, seconds
    of frozen video), a keyframe is asked for, and the next frame released is marked
    ``after_loss`` so the relay's outputs wait for that keyframe. A frame whose start
    was lost is dropped instead of reaching a decoder half-made.
    """

    GAP_WAIT = 0.3

    def __init__(self) -> None:
        super().__init__(capacity=512, is_video=True)
        self.ssrc: int | None = None
        self.dropped = 0  # frames released without their start
        self.skipped = 0  # gaps given up on
        self._blocked: tuple[int, float] | None = None  # (origin, since) of a gap
        self._after_loss = False

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.ssrc = packet.ssrc
        pli, frame = super().add(packet)
        if frame is None and self._origin is not None:
            if self._gap_before(packet.sequence_number):
                now = time.monotonic()
                if self._blocked is None or self._blocked[0] != self._origin:
                    self._blocked = (self._origin, now)
                elif now - self._blocked[1] > self.GAP_WAIT and self._skip_gap():
                    self._blocked = None
                    pli = True
                    frame = self._remove_frame(packet.sequence_number)
            else:
                self._blocked = None
        else:
            self._blocked = None
        return pli, frame

    def _gap_before(self, sequence_number: int) -> bool:
        """Whether a packet is missing between the origin and ``sequence_number``."""
        delta = uint16_add(sequence_number, -self._origin)  # type: ignore[operator]
        if delta >= self._capacity:
            return False
        return any(
            self._packets[(self._origin + count) % self._capacity] is None  # type: ignore[operator]
            for count in range(delta)
        )

    def _skip_gap(self) -> bool:
        """Move the origin past the first gap, to the next frame start after it."""
        gap = False
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]  # type: ignore[operator]
            if packet is None:
                gap = True
            elif gap and _vp8_frame_start(packet):
                self.remove(count)
                self.skipped += 1
                self._after_loss = True
                return True
        return False

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]  # type: ignore[operator]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The marker packet of the previous frame never came: a new frame began.
                return self._release(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._release(packets, timestamp, count + 1)
        return None

    def _release(self, packets: list[RtpPacket], timestamp: int, count: int) -> JitterFrame | None:
        self.remove(count)
        if not _vp8_frame_start(packets[0]):
            self.dropped += 1
            self._after_loss = True
            return None
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        frame.after_loss = self._after_loss  # type: ignore[attr-defined]
        self._after_loss = False
        return frame


class AudioPassBuffer(JitterBuffer):
    """Each Opus packet is a whole frame: pass it on at once, in order, dropping late ones."""

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self.ssrc: int | None = None
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.ssrc = packet.ssrc
        if self._last is not None and not uint16_gt(packet.sequence_number, self._last):
            return False, None  # a duplicate, or later than what was already passed on
        self._last = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


FrameSink = Callable[[EncodedFrame], None]


class ReceiverTap:
    """Stands in for an RTCRtpReceiver's decoder queue.

    aiortc's receiver ``put``s each re-assembled frame here (on the event loop) and its
    decoder thread ``get``s from here. Every frame goes to ``sink`` (the forwarding);
    a video frame also goes to the decoder when ``decode()`` says someone (the face
    checks) wants decoded frames.

    The decoder never gets more than ``DECODE_BACKLOG`` frames behind: on a starved
    machine an unbounded backlog grew for good, and aiortc's receiver, stopping, waits
    on the event loop for its thread to decode all of it (a call's end froze every
    socket of an in-process relay). Past the limit the tap skips to the next keyframe
    (asking the sender for one through ``on_overload``). The end-of-stream ``None``
    always reaches the thread at once, ahead of frames not yet decoded.
    """

    DECODE_BACKLOG = 8

    def __init__(self, kind: str, decode: Callable[[], bool]) -> None:
        self.kind = kind
        self.sink: FrameSink | None = None
        self.on_overload: Callable[[], object] | None = None
        self._decode = decode
        self._inner: queue.Queue[Any] = queue.Queue()
        self._skipping = False
        self.frames = 0
        self.decoded = 0  # frames handed to the decoder thread
        self.skipped = 0  # frames not decoded: the decoder was too far behind

    def put(self, item: Any) -> None:
        if item is None:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._inner.get_nowait()
            self._inner.put(None)
            return
        codec, jitter_frame = item
        data = jitter_frame.data
        keyframe = vp8_is_keyframe(data) if self.kind == "video" else True
        self.frames += 1
        sink = self.sink
        if sink is not None:
            try:
                after_loss = bool(getattr(jitter_frame, "after_loss", False))
                sink(
                    EncodedFrame(
                        data, jitter_frame.timestamp, keyframe, time.monotonic(), after_loss
                    )
                )
            except Exception:
                logger.exception("forwarding a %s frame failed", self.kind)
        if self.kind == "video" and self._decode():
            if self._skipping and not keyframe:
                self.skipped += 1
                return
            self._skipping = False
            if self._inner.qsize() >= self.DECODE_BACKLOG:
                self.skipped += 1
                self._skipping = True
                if self.on_overload is not None:
                    self.on_overload()
                return
            self.decoded += 1
            self._inner.put(item)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.get(*args, **kwargs)


class ReceiverControl:
    """Feedback towards the browser that sends a stream: keyframe requests, REMB cap."""

    # Never more than one keyframe request per this many seconds to one sender.
    PLI_INTERVAL = 0.2

    def __init__(
        self, receiver: RTCRtpReceiver, buffer: MarkerJitterBuffer | AudioPassBuffer
    ) -> None:
        self.receiver = receiver
        self.buffer = buffer
        self.cap: int | None = None  # bits per second the worst receiver can take
        self.last_remb: int | None = None  # what the relay last asked the sender for
        self._last_pli = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        original = receiver._send_rtcp

        async def send_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                packet = self._capped(packet)
            await original(packet)

        self._send_original = original
        receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]

    def _capped(self, packet: RtcpPsfbPacket) -> RtcpPsfbPacket:
        with contextlib.suppress(ValueError):
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            if self.cap is not None and bitrate > self.cap:
                bitrate = self.cap
                packet = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP,
                    ssrc=packet.ssrc,
                    media_ssrc=0,
                    fci=pack_remb_fci(bitrate, ssrcs),
                )
            self.last_remb = bitrate
        return packet

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def request_keyframe(self) -> bool:
        """Send a PLI to the sender (rate-limited). Returns whether one was sent."""
        now = time.monotonic()
        ssrc = self.buffer.ssrc
        if ssrc is None or now - self._last_pli < self.PLI_INTERVAL:
            return False
        self._last_pli = now
        self._spawn(self.receiver._send_rtcp_pli(ssrc))
        return True

    def set_cap(self, bitrate: int | None) -> None:
        """The lowest REMB of the receivers; sent on at once when it lowers the ask."""
        previous, self.cap = self.cap, bitrate
        ssrc = self.buffer.ssrc
        rtcp_ssrc = vars(self.receiver).get(_RECEIVER_RTCP_SSRC)
        if bitrate is None or ssrc is None or rtcp_ssrc is None:
            return
        if previous is None or bitrate < previous or (self.last_remb or 0) > bitrate:
            packet = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [ssrc])
            )
            self.last_remb = bitrate
            self._spawn(self._send_original(packet))


def tap_receiver(
    receiver: RTCRtpReceiver, kind: str, decode: Callable[[], bool]
) -> tuple[ReceiverTap, ReceiverControl]:
    """Install the tap and the forwarding jitter buffer on a receiver not yet started."""
    check_receiver(receiver)
    if vars(receiver)[_RECEIVER_STARTED]:
        raise AiortcHookMissing("RTCRtpReceiver was started before the relay could tap it")
    buffer: MarkerJitterBuffer | AudioPassBuffer = (
        MarkerJitterBuffer() if kind == "video" else AudioPassBuffer()
    )
    tap = ReceiverTap(kind, decode)
    setattr(receiver, _RECEIVER_JITTER, buffer)
    setattr(receiver, _RECEIVER_QUEUE, tap)
    control = ReceiverControl(receiver, buffer)
    tap.on_overload = control.request_keyframe
    return tap, control


def is_tapped(receiver: RTCRtpReceiver) -> bool:
    return isinstance(vars(receiver).get(_RECEIVER_QUEUE), ReceiverTap)


# --- sending: feedback from the receiving browser -------------------------------------


def hook_sender(
    sender: RTCRtpSender,
    *,
    on_keyframe_request: Callable[[], None],
    on_remb: Callable[[int], None],
) -> None:
    """Route a receiving browser's PLI/FIR and REMB for ``sender`` to the relay.

    aiortc answers NACKs itself from the packets this sender sent (its history), which
    is the relay's packet cache; keyframe requests and bitrate estimates would go to an
    encoder, and the relay does not encode.
    """
    if getattr(sender, "_relay_hooked", False):
        return
    original = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if sender._ssrc in ssrcs:
                    on_remb(bitrate)

    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
    sender._relay_hooked = True  # type: ignore[attr-defined]
