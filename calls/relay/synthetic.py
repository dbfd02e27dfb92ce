"""Synthetic participants for tests and benchmarks: aiortc peers that send numbered
frames and recognise what they receive (the other side's frames, or a placeholder).

A frame carries its number as 16 black/white blocks along the top (survives VP8), and
a band of flat luma below that says who sent it.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

WIDTH, HEIGHT = 640, 480
BITS = 16
BLOCK = WIDTH // BITS  # 40 px
BAND_LUMA = {"family": 180, "prisoner": 110}
BAND = slice(80, 140)


def picture_yuv(rgb: np.ndarray) -> np.ndarray:
    """A 640×480 RGB picture as the yuv420p array ``make_frame`` can draw over."""
    if rgb.shape != (HEIGHT, WIDTH, 3):
        raise ValueError(f"a picture is {HEIGHT}×{WIDTH} RGB, not {rgb.shape}")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    array: np.ndarray = frame.reformat(format="yuv420p").to_ndarray(format="yuv420p")
    return array


def make_frame(number: int, side: str, picture: np.ndarray | None = None) -> av.VideoFrame:
    """Frame ``number`` of ``side``; below the marks, ``picture`` (yuv420p array) if given."""
    if picture is not None:
        array = picture.copy()
        array[: BAND.stop, :] = 60
        # Grey chroma under the marks (rows 0..BAND.stop of the picture).
        array[HEIGHT : HEIGHT + BAND.stop // 4, :] = 128
        array[HEIGHT + HEIGHT // 4 : HEIGHT + HEIGHT // 4 + BAND.stop // 4, :] = 128
        y = array[:HEIGHT]
    else:
        array = None
        y = np.full((HEIGHT, WIDTH), 60, dtype=np.uint8)
    for bit in range(BITS):
        if number >> bit & 1:
            y[0:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 235
        else:
            y[0:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 16
    y[BAND, :] = BAND_LUMA[side]
    if array is not None:
        return av.VideoFrame.from_ndarray(array, format="yuv420p")
    uv = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
    return av.VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p")


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    data = np.frombuffer(bytes(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return data[:, : plane.width]


def read_frame(frame: av.VideoFrame) -> tuple[str, int | None]:
    """('family'|'prisoner'|'paused'|'waiting', number or None) of a received frame."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        frame = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
    elif frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    y = _luma(frame)
    band = float(y[BAND, 20:-20].mean())
    if band > 150:
        side = "family"
    elif 90 <= band <= 135:
        side = "prisoner"
    else:
        v_plane = frame.planes[2]
        v = np.frombuffer(bytes(v_plane), dtype=np.uint8).reshape(
            v_plane.height, v_plane.line_size
        )[:, : v_plane.width]
        # The paused placeholder is purple (V well above grey); "waiting" is grey.
        return ("paused" if float(v[10:60, 10:-10].mean()) > 134 else "waiting"), None
    number = 0
    for bit in range(BITS):
        block = y[8 : BLOCK - 8, bit * BLOCK + 8 : (bit + 1) * BLOCK - 8]
        if float(block.mean()) > 128:
            number |= 1 << bit
    return side, number


class NumberedVideoTrack(MediaStreamTrack):
    """Sends numbered frames at ``fps``; remembers when each number was sent."""

    kind = "video"

    def __init__(self, side: str, fps: int = 15) -> None:
        super().__init__()
        self.side = side
        self.fps = fps
        self.sent: dict[int, float] = {}
        self._count = 0
        self._start: float | None = None

    def picture_now(self) -> np.ndarray | None:
        return None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        number = self._count % (1 << BITS)
        frame = make_frame(number, self.side, self.picture_now())
        frame.pts = self._count * (90_000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        self.sent[number] = time.monotonic()
        self._count += 1
        return frame


class PictureVideoTrack(NumberedVideoTrack):
    """Numbered frames over a picture that can be swapped while sending (faces in tests).

    ``pictures`` maps a name to a 640×480 RGB array (or None: marks on grey). Set
    ``showing`` to switch; ``switched`` records the number of the first frame sent
    with each new picture and when it was sent.
    """

    def __init__(
        self, side: str, pictures: dict[str, np.ndarray | None], showing: str, fps: int = 15
    ) -> None:
        super().__init__(side, fps)
        self._pictures = {
            name: (picture_yuv(rgb) if rgb is not None else None) for name, rgb in pictures.items()
        }
        self._showing = showing
        self.switched: list[tuple[str, int, float]] = []
        self._pending_switch = True

    @property
    def showing(self) -> str:
        return self._showing

    @showing.setter
    def showing(self, name: str) -> None:
        if name not in self._pictures:
            raise KeyError(name)
        self._showing = name
        self._pending_switch = True

    def picture_now(self) -> np.ndarray | None:
        if self._pending_switch:
            self._pending_switch = False
            self.switched.append((self._showing, self._count, time.monotonic()))
        return self._pictures[self._showing]


@dataclass
class Received:
    kinds: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    last_kind: str = ""


class SyntheticPeer:
    """A participant: sends numbered video (and silence), reads what comes back."""

    def __init__(
        self,
        side: str,
        *,
        fps: int = 15,
        peer_track: NumberedVideoTrack | None = None,
        send: bool = True,
        inspect_every: int = 1,
        video: NumberedVideoTrack | None = None,
    ) -> None:
        self.side = side
        # No ICE servers: the default public STUN server costs a timeout offline.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = (video or NumberedVideoTrack(side, fps)) if send else None
        self.received = Received()
        self.other_track = peer_track  # the other side's sender, for latency
        self.inspect_every = inspect_every
        self._tasks: list[asyncio.Task[None]] = []
        self.events: asyncio.Queue[str] = asyncio.Queue()
        if send:
            self.pc.addTrack(AudioStreamTrack())
            self.pc.addTrack(self.video)  # type: ignore[arg-type]
        else:  # a monitor: receive-only, two of each
            for kind in ("audio", "audio", "video", "video"):
                self.pc.addTransceiver(kind, direction="recvonly")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def _read(self, track: MediaStreamTrack) -> None:
        count = 0
        try:
            while True:
                frame = await track.recv()
                if track.kind != "video":
                    continue
                count += 1
                if count % self.inspect_every:
                    continue
                kind, number = read_frame(frame)  # type: ignore[arg-type]
                self.received.kinds[kind] = self.received.kinds.get(kind, 0) + 1
                self.received.last_kind = kind
                self.events.put_nowait(kind)
                if number is not None and self.other_track is not None:
                    sent = self.other_track.sent.get(number)
                    if sent is not None:
                        self.received.latencies.append(time.monotonic() - sent)
        except MediaStreamError:
            pass

    async def wait_for(self, kind: str, count: int = 3, timeout: float = 20) -> None:
        """Wait until ``count`` consecutive received frames are of ``kind``."""

        async def run() -> None:
            seen = 0
            while seen < count:
                got = await self.events.get()
                seen = seen + 1 if got == kind else 0

        await asyncio.wait_for(run(), timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


Answerer = Callable[[str, str], Awaitable[str]]
