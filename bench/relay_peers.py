"""The participants of bench/relay.py: aiortc peers that cost little, in their own process.

The relay is what the bench measures, so its peers must not be the bottleneck. A
family or prisoner peer here never encodes nor decodes:

- it sends a pre-encoded loop (:class:`Clip`): 10 s of numbered 640×480 frames over the
  side's face, VP8-encoded once at start with aiortc's own encoder settings, a keyframe
  every 2 s, and the side's tone as pre-encoded Opus. The frames go to aiortc's sender
  as ``av.Packet`` (it packs them into RTP as they are, as the relay's outputs do). A
  keyframe request (PLI) is answered with the next frame as a keyframe: the loop jumps
  to its next keyframe. (A keyframe version of an arbitrary frame would not do: the
  deltas after it were encoded against another picture and decode wrong for up to
  the next keyframe, numbers unreadable, 13 to 23 dB PSNR.)
- it reads what arrives without decoding: calls/relay/forward.py's receiver tap gives
  every whole encoded frame; the relay forwards bytes unchanged, so a frame is looked up
  by its digest in the table of what the other side sent (which frame of the loop, so
  when it was sent). A frame not in the table is a relay placeholder ("Call paused",
  "Waiting…", silence).

The bench process drives a peer process over loopback TCP, one JSON line per request
(:func:`ask`), so its CPU is counted apart from the relay's and the bench's own.
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FPS = 15
CLIP_SECONDS = 10
KEYFRAME_SECONDS = 2
VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
AUDIO_BITRATE = 96_000  # aiortc's Opus encoder
SETTLE_FRAMES = 5
GRACE = 0.5  # seconds a frame may take to arrive and still count as delivered
SIDES = ("family", "prisoner")
OTHER = {"family": "prisoner", "prisoner": "family"}


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


async def ask(port: int, **request: Any) -> dict[str, Any]:
    """One request to a relay or peer process: a JSON line out, a JSON line back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    answer: dict[str, Any] = json.loads(await reader.readline())
    writer.close()
    return answer


# --- the clip: encoded once -----------------------------------------------------------


@dataclass
class Clip:
    """One side's pre-encoded media, looped while sending (picklable)."""

    side: str
    frames: list[bytes]  # VP8 frames, in loop order
    keyframes: list[int]  # indices of the keyframes in ``frames`` (0 first)
    audio: list[bytes]  # Opus packets of 20 ms

    @property
    def kbps(self) -> float:
        return sum(len(f) for f in self.frames) * 8 / (len(self.frames) / FPS) / 1000

    @property
    def keyframe_bytes(self) -> int:
        return max(len(self.frames[i]) for i in self.keyframes)


def _vp8_context(bitrate: int) -> Any:
    """libvpx set up as aiortc's Vp8Encoder sets it up (aiortc/codecs/vpx.py)."""
    import av

    context = av.CodecContext.create("libvpx", "w")
    context.width, context.height, context.pix_fmt = 640, 480, "yuv420p"
    context.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    context.bit_rate = bitrate
    context.gop_size = 3000  # keyframes only where they are forced
    context.qmin, context.qmax = 2, 56
    context.options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    return context


def encode_clip(side: str, picture_rgb: Any, bitrate: int = 500_000) -> Clip:
    """``side``'s numbered frames over ``picture_rgb`` (640×480) and its tone, encoded."""
    import av
    import numpy as np

    from calls.relay.synthetic import TONE_HZ, make_frame, picture_yuv

    picture = picture_yuv(picture_rgb)
    context = _vp8_context(bitrate)
    frames: list[bytes] = []
    count = CLIP_SECONDS * FPS
    for number in range(count):
        frame = make_frame(number, side, picture)
        frame.pts = number * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        if number % (KEYFRAME_SECONDS * FPS) == 0:
            frame.pict_type = av.video.frame.PictureType.I
        packets = [bytes(p) for p in context.encode(frame)]
        if len(packets) != 1:
            raise RuntimeError(f"libvpx gave {len(packets)} packets for frame {number}")
        frames.append(packets[0])
    keyframes = [i for i, data in enumerate(frames) if not data[0] & 0x01]
    if not keyframes or keyframes[0] != 0:
        raise RuntimeError("the clip does not start with a keyframe")

    opus = av.CodecContext.create("libopus", "w")
    opus.bit_rate = AUDIO_BITRATE
    opus.format, opus.layout, opus.sample_rate = "s16", "stereo", AUDIO_RATE
    opus.options = {"application": "voip"}
    opus.time_base = fractions.Fraction(1, AUDIO_RATE)
    step = 2 * np.pi * TONE_HZ[side] / AUDIO_RATE
    wave = (8000 * np.sin(step * np.arange(AUDIO_SAMPLES))).astype(np.int16)
    stereo = np.repeat(wave, 2).reshape(1, -1)
    audio: list[bytes] = []
    for index in range(50):  # one second
        chunk = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        chunk.sample_rate = AUDIO_RATE
        chunk.pts = index * AUDIO_SAMPLES
        audio += [bytes(p) for p in opus.encode(chunk)]
    return Clip(side, frames, keyframes, audio)


@dataclass
class Table:
    """Digest → (side, loop index) of every frame the clips hold; audio digest → side."""

    video: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    audio: dict[bytes, str] = field(default_factory=dict)

    @classmethod
    def of(cls, clips: dict[str, Clip]) -> Table:
        table = cls()
        for side, clip in clips.items():
            for index, data in enumerate(clip.frames):
                table.video.setdefault(digest(data), (side, index))
            for data in clip.audio:
                table.audio.setdefault(digest(data), side)
        return table


# --- sending --------------------------------------------------------------------------


def _tracks() -> tuple[Any, Any]:
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from calls.relay.synthetic import audio_slot

    class ClipVideoTrack(MediaStreamTrack):
        """Sends the clip's VP8 frames at 15 fps, looped; notes when each was sent."""

        kind = "video"

        def __init__(self, clip: Clip) -> None:
            super().__init__()
            self.clip = clip
            self.sent_at: dict[int, float] = {}  # send count → time sent
            self.count_of: dict[int, int] = {}  # loop index → its latest send count
            self.keyframe_requests = 0
            self.jumps = 0  # requests that made the loop skip ahead to a keyframe
            self._index = 0
            self._count = 0
            self._start: float | None = None
            self._keyframe_wanted = False
            self._next_key = {
                i: next((k for k in clip.keyframes if k >= i), 0) for i in range(len(clip.frames))
            }

        def request_keyframe(self) -> None:
            self.keyframe_requests += 1
            self._keyframe_wanted = True

        async def recv(self) -> av.Packet:
            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            delay = self._start + self._count / FPS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._keyframe_wanted:
                self._keyframe_wanted = False
                key = self._next_key[self._index]
                if key != self._index:
                    self.jumps += 1
                    self._index = key
            packet = av.Packet(self.clip.frames[self._index])
            packet.pts = self._count * (VIDEO_CLOCK // FPS)
            packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self.sent_at[self._count] = time.monotonic()
            self.count_of[self._index] = self._count
            self._index = (self._index + 1) % len(self.clip.frames)
            self._count += 1
            return packet

    class ClipAudioTrack(MediaStreamTrack):
        """Sends the clip's Opus packets, one every 20 ms, looped."""

        kind = "audio"

        def __init__(self, clip: Clip) -> None:
            super().__init__()
            self.clip = clip
            self._count = 0
            self._start: float | None = None

        async def recv(self) -> av.Packet:
            if self.readyState != "live":
                raise MediaStreamError
            self._start = await audio_slot(self._start, self._count)
            packet = av.Packet(self.clip.audio[self._count % len(self.clip.audio)])
            packet.pts = self._count * AUDIO_SAMPLES
            packet.time_base = fractions.Fraction(1, AUDIO_RATE)
            self._count += 1
            return packet

    return ClipVideoTrack, ClipAudioTrack


# --- a participant --------------------------------------------------------------------


def _never() -> bool:
    return False


class BenchPeer:
    """A family or prisoner: sends its clip, recognises what arrives by digest."""

    def __init__(self, side: str, clips: dict[str, Clip], table: Table) -> None:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

        from calls.relay import forward

        video_track, audio_track = _tracks()
        self.side = side
        self.table = table
        # As SyntheticPeer: no ICE servers (offline), MAX_BUNDLE as browsers in effect.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.video = video_track(clips[side])
        self.audio = audio_track(clips[side])
        self.pc.addTrack(self.audio)
        video_sender = self.pc.addTrack(self.video)
        # A PLI from whoever receives this video: the next frame is a keyframe.
        forward.hook_sender(
            video_sender, on_keyframe_request=self.video.request_keyframe, on_remb=lambda _b: None
        )
        self.other: BenchPeer | None = None
        self.taps: list[Any] = []
        self._changed = asyncio.Event()
        self.reset()
        self.tap()

    def reset(self) -> None:
        self.live = 0  # video frames of the other side
        self.placeholder = 0  # video frames not in the table: the relay's placeholders
        self.audio_live = 0
        self.audio_other = 0
        self.latencies: list[float] = []  # seconds, sent → whole frame in
        self.arrived: set[int] = set()  # send counts of the other side's frames that came
        self.streak = 0  # consecutive placeholder frames
        self.armed_at: float | None = None
        self.live_again: float | None = None  # first live frame after armed_at

    def tap(self) -> None:
        """Tap every receiver not yet tapped (before it starts): nothing is decoded."""
        from calls.relay import forward

        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if forward.is_tapped(receiver):
                continue
            tap, _control = forward.tap_receiver(receiver, transceiver.kind, _never)
            tap.sink = self._on_video if transceiver.kind == "video" else self._on_audio
            self.taps.append(tap)

    def _on_video(self, frame: Any) -> None:
        hit = self.table.video.get(digest(frame.data))
        other = self.other
        if hit is None or other is None or hit[0] != other.side:
            self.placeholder += 1
            self.streak += 1
        else:
            self.live += 1
            self.streak = 0
            count = other.video.count_of.get(hit[1])
            sent = other.video.sent_at.get(count) if count is not None else None
            if sent is not None and count is not None:
                self.latencies.append(frame.arrived - sent)
                self.arrived.add(count)
            if self.armed_at is not None and self.live_again is None:
                self.live_again = frame.arrived
        self._changed.set()

    def _on_audio(self, frame: Any) -> None:
        if self.other is not None and self.table.audio.get(digest(frame.data)) == self.other.side:
            self.audio_live += 1
        else:
            self.audio_other += 1

    async def wait(self, condition: Callable[[BenchPeer], bool], ceiling: float) -> bool:
        """Wait until ``condition(self)`` holds; False if ``ceiling`` seconds pass first."""

        async def run() -> None:
            while not condition(self):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(run(), ceiling)
        except TimeoutError:
            return False
        return True

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


async def connect_direct(a: BenchPeer, b: BenchPeer) -> None:
    """Peer to peer, no relay: the baseline the relay's added latency is measured from."""
    from aiortc import RTCSessionDescription

    offer = await a.offer()
    await b.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    b.tap()
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    await a.answer(b.pc.localDescription.sdp)


# --- the peer process -----------------------------------------------------------------


class PeerProcess:
    """The calls' peers of one process, driven by the bench process's requests."""

    def __init__(self, clips: dict[str, Clip]) -> None:
        self.clips = clips
        self.table = Table.of(clips)
        self.pairs: list[tuple[str, int, BenchPeer, BenchPeer]] = []  # (call, relay port, f, p)
        self._end = 0.0
        self._sent: list[set[int]] = []

    @property
    def peers(self) -> list[BenchPeer]:
        return [p for _c, _port, f, pr in self.pairs for p in (f, pr)]

    def _pair(self) -> tuple[BenchPeer, BenchPeer]:
        family = BenchPeer("family", self.clips, self.table)
        prisoner = BenchPeer("prisoner", self.clips, self.table)
        family.other, prisoner.other = prisoner, family
        return family, prisoner

    async def relayed(self, calls: list[list[Any]]) -> dict[str, Any]:
        for call_id, port in calls:
            family, prisoner = self._pair()
            for peer in (family, prisoner):
                sdp = await peer.offer()
                answer = await ask(port, op="offer", call_id=call_id, role=peer.side, sdp=sdp)
                await peer.answer(answer["sdp"])
            self.pairs.append((call_id, port, family, prisoner))
        return {}

    async def direct(self, n: int) -> dict[str, Any]:
        for _ in range(n):
            family, prisoner = self._pair()
            await connect_direct(family, prisoner)
            self.pairs.append(("", 0, family, prisoner))
        return {}

    async def settle(self, ceiling: float) -> dict[str, Any]:
        """Wait (a ceiling, not a sleep) until every peer receives the other side's video."""
        done = await asyncio.gather(
            *(p.wait(lambda p: p.live >= SETTLE_FRAMES, ceiling) for p in self.peers)
        )
        return {"settled": all(done)}

    async def start(self) -> dict[str, Any]:
        for peer in self.peers:
            peer.reset()
            peer.video.sent_at.clear()
            peer.video.keyframe_requests = peer.video.jumps = 0
        return {}

    async def stop(self) -> dict[str, Any]:
        """The measured window ends: frames sent until GRACE before now must arrive."""
        end = time.monotonic() - GRACE
        self._sent = [{c for c, t in list(p.video.sent_at.items()) if t <= end} for p in self.peers]
        return {}

    async def collect(self) -> dict[str, Any]:
        peers = self.peers
        arrived = 0
        for sent, peer in zip(self._sent, peers, strict=True):
            other = peer.other
            if other is not None:
                arrived += len(sent & other.arrived)
        return {
            "sent": sum(len(s) for s in self._sent),
            "arrived": arrived,
            "latencies_ms": [round(1000 * x, 2) for p in peers for x in p.latencies],
            "audio_live": sum(p.audio_live for p in peers),
            "audio_other": sum(p.audio_other for p in peers),
            "placeholder": sum(p.placeholder for p in peers),
            "keyframe_requests": sum(p.video.keyframe_requests for p in peers),
            "jumps": sum(p.video.jumps for p in peers),
        }

    async def await_placeholder(self, count: int, ceiling: float) -> dict[str, Any]:
        for peer in self.peers:
            peer.streak = 0
        shown = await asyncio.gather(
            *(p.wait(lambda p: p.streak >= count, ceiling) for p in self.peers)
        )
        return {"missing": sum(1 for s in shown if not s)}

    async def arm(self) -> dict[str, Any]:
        now = time.monotonic()
        for peer in self.peers:
            peer.armed_at, peer.live_again = now, None
        return {}

    async def await_live(self, started: float, ceiling: float) -> dict[str, Any]:
        """ms from ``started`` (the bench's resume, same monotonic clock) to live again."""
        await asyncio.gather(
            *(p.wait(lambda p: p.live_again is not None, ceiling) for p in self.peers)
        )
        return {
            "waits_ms": [
                None if p.live_again is None else 1000 * (p.live_again - started)
                for p in self.peers
            ]
        }

    async def close(self) -> dict[str, Any]:
        pairs, self.pairs = self.pairs, []
        for _call, _port, family, prisoner in pairs:
            await family.close()
            await prisoner.close()
        return {}


def peer_process(port_queue: Any, clips: dict[str, Clip]) -> None:
    """Entry point of a peer process (multiprocessing, spawn)."""
    import logging
    import signal

    logging.basicConfig(level=logging.WARNING)
    state = PeerProcess(clips)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        op = request.pop("op")
        try:
            reply = await getattr(state, op)(**request)
            reply["ok"] = True
        except Exception as exc:  # the bench shows it and stops
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply["pid"] = os.getpid()
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=2**20)
        port_queue.put(server.sockets[0].getsockname()[1])
        await stop.wait()
        await state.close()

    asyncio.run(main())
