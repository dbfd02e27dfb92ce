"""Outgoing tracks of the relay.

An ``OutputTrack`` sends one side's audio or video to one peer. Its source can be
swapped at any time (the other side joins, drops, rejoins), and a *gated* output (the
family↔prisoner direction) sends a placeholder frame and silence while the call is
paused. Monitors get ungated outputs: they keep receiving live media.

Frames from a source are shared by every consumer of that source (aiortc's
MediaRelay hands the same object to each proxy), so an output copies a frame before
giving it its own timestamps: every output has one steady clock whatever the source,
which keeps the receiving browser's jitter buffer happy across pauses and rejoins.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from PIL import Image, ImageDraw, ImageFont

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
SOURCE_TIMEOUT = 0.5


class Gate:
    """Open while the call is live; closed (placeholder and silence) while paused."""

    def __init__(self) -> None:
        self.open = True
        self.paused = False  # closed because paused (not merely not started yet)


@functools.lru_cache(maxsize=4)
def _placeholder_yuv(text: str, rgb: tuple[int, int, int]) -> np.ndarray:
    image = Image.new("RGB", (WIDTH, HEIGHT), rgb)
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=44)
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), text, font=font)
    x = (WIDTH - (box[2] - box[0])) // 2
    y = (HEIGHT - (box[3] - box[1])) // 2
    draw.text((x, y), text, fill=(255, 255, 255), font=font)
    frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
    array: np.ndarray = frame.to_ndarray(format="yuv420p")
    array.setflags(write=False)
    return array


def placeholder_frame(text: str = "Call paused", rgb: tuple[int, int, int] = PLACEHOLDER_RGB):  # type: ignore[no-untyped-def]
    return av.VideoFrame.from_ndarray(_placeholder_yuv(text, rgb), format="yuv420p")


def copy_video_frame(frame: av.VideoFrame) -> av.VideoFrame:
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    return av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")


def silence_frame() -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = AUDIO_RATE
    return frame


def copy_audio_frame(frame: av.AudioFrame) -> av.AudioFrame:
    copy = av.AudioFrame.from_ndarray(
        frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name
    )
    copy.sample_rate = frame.sample_rate
    return copy


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
        self._source: MediaStreamTrack | None = None
        self._t0: float | None = None
        self._samples = 0
        self._last_audio = 0.0
        self.live_frames = 0
        self.placeholder_frames = 0

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def set_source(self, source: MediaStreamTrack | None) -> None:
        old, self._source = self._source, source
        if old is not None and old is not source:
            old.stop()

    def stop(self) -> None:
        self.set_source(None)
        super().stop()

    def _passing(self) -> MediaStreamTrack | None:
        if self.gate is not None and not self.gate.open:
            return None
        return self._source

    async def _from_source(self, timeout: float) -> av.frame.Frame | None:
        source = self._passing()
        if source is None:
            return None
        try:
            frame = await asyncio.wait_for(source.recv(), timeout)
        except TimeoutError:
            return None
        except MediaStreamError:
            if self._source is source:
                self._source = None
            return None
        if self._passing() is None:  # paused while we waited: the frame must not pass
            return None
        return frame if isinstance(frame, av.frame.Frame) else None

    async def recv(self) -> av.frame.Frame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        if self.kind == "video":
            return await self._recv_video()
        return await self._recv_audio()

    async def _recv_video(self) -> av.VideoFrame:
        frame = await self._from_source(SOURCE_TIMEOUT)
        if frame is not None:
            out = copy_video_frame(frame)  # type: ignore[arg-type]
            self.live_frames += 1
        else:
            await asyncio.sleep(1 / PLACEHOLDER_FPS)
            if self.readyState != "live":
                raise MediaStreamError
            paused = self.gate is not None and not self.gate.open and self.gate.paused
            out = (
                placeholder_frame() if paused else placeholder_frame(self.waiting_text, WAITING_RGB)
            )
            self.placeholder_frames += 1
        out.pts = int((time.monotonic() - (self._t0 or 0.0)) * VIDEO_CLOCK_RATE)
        out.time_base = VIDEO_TIME_BASE
        return out

    async def _recv_audio(self) -> av.AudioFrame:
        frame = await self._from_source(0.1)
        if frame is not None:
            out = copy_audio_frame(frame)  # type: ignore[arg-type]
        else:
            # Pace silence at one 20 ms frame per 20 ms after the last frame sent.
            delay = self._last_audio + AUDIO_SAMPLES / AUDIO_RATE - time.monotonic()
            await asyncio.sleep(max(delay, 0.0))
            if self.readyState != "live":
                raise MediaStreamError
            out = silence_frame()
        self._last_audio = time.monotonic()
        out.pts = self._samples
        out.time_base = fractions.Fraction(1, out.sample_rate)
        self._samples += out.samples
        return out
