"""Outgoing tracks of the relay: encoded media forwarded, never re-encoded.

An ``OutputTrack`` sends one side's audio or video to one peer. Its ``recv()`` returns
``av.Packet`` objects, which aiortc's sender packs into RTP as they are: the frames the
other side's browser encoded (from an :class:`EncodedSource`), or, while there are none
to pass, a pre-encoded placeholder: a VP8 keyframe of a "Call paused" or "Waiting…"
picture five times a second, and Opus silence every 20 ms.

A *gated* output (the family↔prisoner direction) passes no live packet while the
call is paused; monitors get ungated outputs and keep receiving live media.

After a switch (a new source, a resume, a new receiver) live video passes only from a
keyframe on, and the output asks the sending browser for one (PLI, through the
source). Every output has its own steady clock: timestamps continue across
placeholder↔live switches, re-anchored at each switch, so the receiving browser's
jitter buffer never sees time jump back.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import functools
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from PIL import Image, ImageDraw, ImageFont

from calls.relay.forward import EncodedFrame, ReceiverControl

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_RATE = 48_000
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AUDIO_SAMPLES = 960  # 20 ms
PLACEHOLDER_FPS = 5
WIDTH, HEIGHT = 640, 480
# Colour of the placeholder background (RGB): tests recognise placeholder frames by it.
PLACEHOLDER_RGB = (60, 20, 90)
WAITING_RGB = (20, 20, 20)
# The placeholder pictures are burnt into video, before anyone's language is known:
# they say it in both languages.
PAUSED_TEXT = "Call paused\nGalwad wedi'i gohirio"
# Live audio missing for this long: silence is sent in its place.
AUDIO_GAP = 0.1
# Live video missing for this long: the placeholder is sent in its place.
SOURCE_TIMEOUT = 0.5
# While waiting for a keyframe, ask the sender again this often.
KEYFRAME_RETRY = 0.5
# An output keeps at most this many frames not yet sent (a slow receiver drops the
# oldest, then waits for a keyframe).
QUEUE_FRAMES = {"video": 30, "audio": 25}
# A source clock that jumps this far from the output's (a sender's restart) re-anchors.
MAX_DRIFT_SECONDS = 5.0


class Gate:
    """Open while the call is live; closed (placeholder and silence) while paused."""

    def __init__(self) -> None:
        self.open = True
        self.paused = False  # closed because paused (not merely not started yet)
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def set(self, *, open: bool, paused: bool) -> None:
        changed = (open, paused) != (self.open, self.paused)
        self.open, self.paused = open, paused
        if changed:
            for callback in list(self._listeners):
                callback()


def _placeholder_image(text: str, rgb: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), rgb)
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=40)
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    box = draw.multiline_textbbox((0, 0), text, font=font, align="center", spacing=14)
    x = (WIDTH - (box[2] - box[0])) // 2
    y = (HEIGHT - (box[3] - box[1])) // 2
    draw.multiline_text((x, y), text, fill=(255, 255, 255), font=font, align="center", spacing=14)
    return image


def placeholder_frame(
    text: str = PAUSED_TEXT, rgb: tuple[int, int, int] = PLACEHOLDER_RGB
) -> av.VideoFrame:
    return av.VideoFrame.from_image(_placeholder_image(text, rgb)).reformat(format="yuv420p")


@functools.lru_cache(maxsize=16)
def placeholder_keyframe(
    text: str = PAUSED_TEXT, rgb: tuple[int, int, int] = PLACEHOLDER_RGB
) -> bytes:
    """The placeholder picture as one VP8 keyframe (about 3 KB), encoded once."""
    context = av.CodecContext.create("libvpx", "w")
    context.width, context.height = WIDTH, HEIGHT
    context.pix_fmt = "yuv420p"
    context.time_base = VIDEO_TIME_BASE
    context.bit_rate = 300_000
    # Realtime: ~15 ms once per picture (a "good" encode takes 0.3 s on the event loop).
    context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frame = placeholder_frame(text, rgb)
    frame.pts = 0
    packets = list(context.encode(frame)) + list(context.encode(None))
    key = bytes(packets[0])
    if not packets[0].is_keyframe:
        raise RuntimeError("libvpx did not start with a keyframe")
    return key


def warm_placeholders(texts: list[str]) -> None:
    """Encode the placeholders ahead of the first pause (run it off the event loop)."""
    placeholder_keyframe()
    for text in texts:
        placeholder_keyframe(text, WAITING_RGB)
    opus_silence()


@functools.lru_cache(maxsize=1)
def opus_silence() -> bytes:
    """20 ms of stereo silence as one Opus packet, encoded once."""
    context = av.CodecContext.create("libopus", "w")
    context.sample_rate = AUDIO_RATE
    context.layout = "stereo"
    context.format = "s16"
    context.time_base = AUDIO_TIME_BASE
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, AUDIO_SAMPLES * 2), dtype=np.int16), format="s16", layout="stereo"
    )
    frame.sample_rate = AUDIO_RATE
    frame.pts = 0
    packets = [p for p in context.encode(frame)] + [p for p in context.encode(None)]
    return bytes(packets[0])


class EncodedSource:
    """One side's received audio or video: the frames its browser sent, encoded.

    Frames arrive from calls.relay.forward's tap on the event loop and are pushed to
    every subscribed output. Outputs ask for keyframes and report their receiver's
    bitrate through here; both go to the sending browser via ``control``.
    """

    def __init__(self, side: str, kind: str, control: ReceiverControl | None) -> None:
        self.side = side
        self.kind = kind
        self.control = control
        self.outputs: set[OutputTrack] = set()
        self.frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self.closed = False
        self._rembs: dict[OutputTrack, int] = {}

    def deliver(self, frame: EncodedFrame) -> None:
        self.frames += 1
        if frame.keyframe:
            self.keyframes += 1
        elif frame.after_loss and self.kind == "video":
            for output in list(self.outputs):
                output.lost_reference()
        for output in list(self.outputs):
            output.push(self, frame)

    def request_keyframe(self) -> None:
        if self.kind == "video" and self.control is not None and self.control.request_keyframe():
            self.keyframe_requests += 1

    def report_bitrate(self, output: OutputTrack, bitrate: int | None) -> None:
        if bitrate is None:
            self._rembs.pop(output, None)
        else:
            self._rembs[output] = bitrate
        if self.control is not None and self.kind == "video":
            self.control.set_cap(min(self._rembs.values()) if self._rembs else None)

    def close(self) -> None:
        self.closed = True
        for output in list(self.outputs):
            output.source_closed(self)
        self.outputs.clear()


class OutputTrack(MediaStreamTrack):
    """One side's audio or video towards one peer, through an optional gate."""

    def __init__(
        self, kind: str, side: str, gate: Gate | None, waiting_text: str = "Waiting…"
    ) -> None:
        super().__init__()
        self.kind = kind
        self.side = side
        self.gate = gate
        self.waiting_text = waiting_text
        self._source: EncodedSource | None = None
        self._queue: collections.deque[EncodedFrame] = collections.deque(maxlen=QUEUE_FRAMES[kind])
        self._wake = asyncio.Event()
        self._t0 = time.monotonic()
        self._last_ts: int | None = None  # output clock of the last packet sent
        self._anchor: tuple[int, int] | None = None  # (output ts, source ts) of the switch
        self._need_keyframe = True
        self._keyframe_asked = 0.0
        self._last_placeholder = 0.0
        self._placeholder_sent: bytes | None = None
        self._unlisten = gate.listen(self._gate_changed) if gate is not None else None
        # Figures (tests and bench): packets of each kind handed to the sender.
        self.live_frames = 0
        self.placeholder_frames = 0
        self.dropped_frames = 0
        self.keyframe_waits: list[float] = []  # seconds from a switch to its first live keyframe
        # Seconds each live frame spent inside the relay (whole frame in → handed to the
        # sender), the last few thousand: what the relay itself adds (bench/relay.py).
        self.forward_delays: collections.deque[float] = collections.deque(maxlen=4000)
        self._switched_at: float | None = None
        self.bitrate: int | None = None

    @property
    def clock_rate(self) -> int:
        return VIDEO_CLOCK_RATE if self.kind == "video" else AUDIO_RATE

    @property
    def source(self) -> EncodedSource | None:
        return self._source

    # --- wiring ----------------------------------------------------------------------

    def set_source(self, source: EncodedSource | None) -> None:
        old, self._source = self._source, source
        if old is source:
            return
        if old is not None:
            old.outputs.discard(self)
            old.report_bitrate(self, None)
        if source is not None:
            source.outputs.add(self)
            if self.bitrate is not None:
                source.report_bitrate(self, self.bitrate)
        self._switch()

    def source_closed(self, source: EncodedSource) -> None:
        if self._source is source:
            self._source = None
            self._switch()

    def stop(self) -> None:
        self.set_source(None)
        if self._unlisten is not None:
            self._unlisten()
        self._wake.set()
        super().stop()

    def _passing(self) -> bool:
        return self._source is not None and (self.gate is None or self.gate.open)

    def _switch(self) -> None:
        """What this output passes changes: wait for a keyframe, re-anchor the clock."""
        self._queue.clear()
        self._anchor = None
        self._need_keyframe = True
        self._keyframe_asked = 0.0
        self._switched_at = time.monotonic() if self._passing() else None
        if self._passing():
            self._ask_keyframe()
        self._wake.set()

    def _gate_changed(self) -> None:
        self._switch()

    def _ask_keyframe(self) -> None:
        if self.kind != "video" or self._source is None:
            return
        self._keyframe_asked = time.monotonic()
        self._source.request_keyframe()

    # --- from the source and the receiver's feedback ---------------------------------

    def push(self, source: EncodedSource, frame: EncodedFrame) -> None:
        if source is not self._source or not self._passing():
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped_frames += 1
            if self.kind == "video":
                # The oldest frame is about to be lost: the next ones cannot be decoded
                # without it, so start again from a keyframe.
                self._queue.clear()
                self._need_keyframe = True
                self._ask_keyframe()
        self._queue.append(frame)
        self._wake.set()

    def lost_reference(self) -> None:
        """Frames were lost before the relay: pass nothing until the next keyframe."""
        if self.kind == "video" and self._passing():
            self._queue.clear()
            self._need_keyframe = True
            self._ask_keyframe()

    def keyframe_requested(self) -> None:
        """The receiving browser lost the picture (PLI/FIR)."""
        self._last_placeholder = 0.0  # the next placeholder goes out at once
        self._wake.set()
        if self._passing():
            self._ask_keyframe()

    def bitrate_reported(self, bitrate: int) -> None:
        """The receiving browser's REMB: what it can take."""
        self.bitrate = bitrate
        if self._source is not None:
            self._source.report_bitrate(self, bitrate)

    # --- to the sender ---------------------------------------------------------------

    def _stamp(self, data: bytes, source_ts: int | None) -> av.Packet:
        rate = self.clock_rate
        nominal = int((time.monotonic() - self._t0) * rate)
        after = (self._last_ts + 1) if self._last_ts is not None else 0
        if source_ts is None:
            ts = max(nominal, after)
        else:
            if self._anchor is not None:
                ts = self._anchor[0] + source_ts - self._anchor[1]
                if ts < after or abs(ts - nominal) > MAX_DRIFT_SECONDS * rate:
                    self._anchor = None
            if self._anchor is None:
                self._anchor = (max(nominal, after), source_ts)
                ts = self._anchor[0]
        self._last_ts = ts
        packet = av.Packet(data)
        packet.pts = ts
        packet.time_base = fractions.Fraction(1, rate)
        return packet

    async def _next_live(self, timeout: float) -> EncodedFrame | None:
        """The next frame to pass, or None when the timeout runs out or passing stops."""
        deadline = time.monotonic() + timeout
        while self._passing():
            while self._queue:
                frame = self._queue.popleft()
                if self.kind == "video" and self._need_keyframe:
                    if not frame.keyframe:
                        self.dropped_frames += 1
                        if time.monotonic() - self._keyframe_asked > KEYFRAME_RETRY:
                            self._ask_keyframe()
                        continue
                    self._need_keyframe = False
                    if self._switched_at is not None:
                        self.keyframe_waits.append(time.monotonic() - self._switched_at)
                        self._switched_at = None
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return None
        return None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self.kind == "video":
            packet = await self._recv_video()
        else:
            packet = await self._recv_audio()
        if self.readyState != "live":
            raise MediaStreamError
        return packet

    async def _recv_video(self) -> av.Packet:
        while True:
            if self._passing():
                # Waiting for a keyframe: keep the placeholder going meanwhile.
                timeout = 1 / PLACEHOLDER_FPS if self._need_keyframe else SOURCE_TIMEOUT
                frame = await self._next_live(timeout)
                if frame is not None and self._passing():  # paused while we waited: drop it
                    self.live_frames += 1
                    self._placeholder_sent = None
                    self.forward_delays.append(time.monotonic() - frame.arrived)
                    return self._stamp(frame.data, frame.timestamp)
                if self._passing() and not self._need_keyframe and frame is None:
                    # The source went quiet: placeholder until its next keyframe.
                    self._switch()
            else:
                wait = self._last_placeholder + 1 / PLACEHOLDER_FPS - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                        continue  # woken: the gate or the source changed
                    except TimeoutError:
                        pass
            if self.readyState != "live":
                raise MediaStreamError
            if time.monotonic() - self._last_placeholder >= 1 / PLACEHOLDER_FPS - 0.005:
                self._last_placeholder = time.monotonic()
                self.placeholder_frames += 1
                return self._stamp(self._placeholder(), None)

    def _placeholder(self) -> bytes:
        if self._passing() and self._placeholder_sent is not None:
            # Live again, its first keyframe on its way: keep the picture on screen.
            return self._placeholder_sent
        paused = self.gate is not None and not self.gate.open and self.gate.paused
        if paused:
            data = placeholder_keyframe()
        else:
            data = placeholder_keyframe(self.waiting_text, WAITING_RGB)
        self._placeholder_sent = data
        return data

    async def _recv_audio(self) -> av.Packet:
        if self._passing():
            frame = await self._next_live(AUDIO_GAP)
            if frame is not None and self._passing():
                self.live_frames += 1
                return self._stamp(frame.data, frame.timestamp)
        # Silence, paced at one 20 ms packet per 20 ms after the last one sent.
        last = self._last_ts if self._last_ts is not None else -AUDIO_SAMPLES
        due = self._t0 + (last + AUDIO_SAMPLES) / AUDIO_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.placeholder_frames += 1
        self._anchor = None
        rate = AUDIO_RATE
        ts = max(last + AUDIO_SAMPLES, int((time.monotonic() - self._t0) * rate) - AUDIO_SAMPLES)
        self._last_ts = ts
        packet = av.Packet(opus_silence())
        packet.pts = ts
        packet.time_base = AUDIO_TIME_BASE
        return packet
