"""Synthetic participants for tests and benchmarks: aiortc peers that send numbered
frames and recognise what they receive (the other side's frames, or a placeholder).

A frame carries its number as 16 black/white blocks along the top (survives VP8), and
a band of flat luma below that says who sent it. Audio is a tone whose pitch says who
sent it (``TONE_HZ``), so a monitor can tell the family's sound from the prisoner's.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

WIDTH, HEIGHT = 640, 480
BITS = 16
BLOCK = WIDTH // BITS  # 40 px
BAND_LUMA = {"family": 180, "prisoner": 110}
BAND = slice(80, 140)
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
TONE_HZ = {"family": 400, "prisoner": 1000}


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


def read_tone(frame: av.AudioFrame) -> str:
    """'family'|'prisoner' by the pitch of a received audio frame; 'silence' or 'other'."""
    samples = frame.to_ndarray().astype(np.float64)
    if frame.format.is_planar:
        mono = samples[0]
    else:
        mono = samples.reshape(-1)[:: max(len(frame.layout.channels), 1)]
    if mono.size < 64 or float(np.sqrt(np.mean(mono**2))) < 200:
        return "silence"
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    peak = float(np.argmax(spectrum[1:]) + 1) * frame.sample_rate / mono.size
    for side, hz in TONE_HZ.items():
        if abs(peak - hz) < 100:
            return side
    return "other"


async def audio_slot(start: float | None, count: int) -> float:
    """Wait for the time of 20 ms audio frame ``count`` of a stream that started at
    ``start`` (now, when None); returns the start."""
    if start is None:
        start = time.monotonic()
    delay = start + count * AUDIO_SAMPLES / AUDIO_RATE - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    return start


class ToneAudioTrack(MediaStreamTrack):
    """Sends ``side``'s tone (48 kHz mono), one 20 ms frame every 20 ms."""

    kind = "audio"

    def __init__(self, side: str, amplitude: int = 8000) -> None:
        super().__init__()
        self.side = side
        step = 2 * np.pi * TONE_HZ[side] / AUDIO_RATE
        # TONE_HZ are multiples of 50 Hz: a 20 ms frame holds whole periods.
        wave = amplitude * np.sin(step * np.arange(AUDIO_SAMPLES))
        self._wave = wave.astype(np.int16).reshape(1, -1)
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = await audio_slot(self._start, self._count)
        frame = av.AudioFrame.from_ndarray(self._wave, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._count * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._count += 1
        return frame


class Seen(str):
    """What a received video frame showed ('family', 'paused', …), and on which track."""

    track: int = 0


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
    """A participant: sends numbered video and its side's tone, reads what comes back.

    A monitor (``send=False``) is receive-only with two audio and two video
    transceivers in ``order`` ("aavv", "avav", "vvaa", …). ``by_mid`` counts, per
    transceiver mid, what arrived on it: for video what ``read_frame`` says, for audio
    what ``read_tone`` says; ``wait_for_mids`` waits on those counts.
    """

    def __init__(
        self,
        side: str,
        *,
        fps: int = 15,
        peer_track: NumberedVideoTrack | None = None,
        send: bool = True,
        inspect_every: int = 1,
        video: NumberedVideoTrack | None = None,
        order: str = "aavv",
    ) -> None:
        self.side = side
        # No ICE servers: the default public STUN server costs a timeout offline.
        # MAX_BUNDLE as a browser does in effect: with aiortc's default (BALANCED) an
        # aiortc *offerer* leaves its second m-line of a kind on a transport that BUNDLE
        # discards, and never receives on it (the relay answers with MAX_COMPAT).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.video = (video or NumberedVideoTrack(side, fps)) if send else None
        self.received = Received()
        self.other_track = peer_track  # the other side's sender, for latency
        self.inspect_every = inspect_every
        self._tasks: list[asyncio.Task[None]] = []
        self.events: asyncio.Queue[str] = asyncio.Queue()
        self.by_mid: dict[str, dict[str, int]] = {}
        self._changed = asyncio.Event()
        self.audio: ToneAudioTrack | None = None
        if send:
            self.audio = ToneAudioTrack(side)
            self.pc.addTrack(self.audio)
            self.pc.addTrack(self.video)  # type: ignore[arg-type]
        else:  # a monitor: receive-only, two of each
            kinds = {"a": "audio", "v": "video"}
            if sorted(order) != ["a", "a", "v", "v"]:
                raise ValueError("a monitor has two audio and two video transceivers")
            for letter in order:
                self.pc.addTransceiver(kinds[letter], direction="recvonly")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(
                (t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), None
            )
            index = len(self._tasks)
            self._tasks.append(asyncio.ensure_future(self._read(track, mid or "?", index)))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def _count(self, mid: str, what: str) -> None:
        counts = self.by_mid.setdefault(mid, {})
        counts[what] = counts.get(what, 0) + 1
        self._changed.set()

    async def _read(self, track: MediaStreamTrack, mid: str = "?", index: int = 0) -> None:
        count = 0
        try:
            while True:
                frame = await track.recv()
                if track.kind != "video":
                    self._count(mid, read_tone(frame))  # type: ignore[arg-type]
                    continue
                count += 1
                if count % self.inspect_every:
                    continue
                kind, number = read_frame(frame)  # type: ignore[arg-type]
                self.received.kinds[kind] = self.received.kinds.get(kind, 0) + 1
                self.received.last_kind = kind
                self._count(mid, kind)
                seen = Seen(kind)
                seen.track = index
                self.events.put_nowait(seen)
                if number is not None and self.other_track is not None:
                    sent = self.other_track.sent.get(number)
                    if sent is not None:
                        self.received.latencies.append(time.monotonic() - sent)
        except MediaStreamError:
            pass

    async def wait_for(self, kind: str, count: int = 3, timeout: float = 60) -> None:
        """Wait until ``count`` consecutive frames received on one track are of ``kind``.

        ``timeout`` is a ceiling for a loaded machine, not the expected time.
        """

        async def run() -> None:
            streaks: dict[int, int] = {}
            while max(streaks.values(), default=0) < count:
                got = await self.events.get()
                track = getattr(got, "track", 0)
                streaks[track] = streaks.get(track, 0) + 1 if got == kind else 0

        await asyncio.wait_for(run(), timeout)

    async def wait_for_mids(
        self, wanted: dict[str, str], count: int = 10, timeout: float = 60
    ) -> None:
        """Wait until each mid in ``wanted`` has received ``count`` frames of its kind.

        ``wanted`` maps a mid to what must arrive on it ('family', 'prisoner', …).
        The timeout is a ceiling (a loaded machine is slow), not the expected time.
        """

        def done() -> bool:
            return all(
                self.by_mid.get(mid, {}).get(what, 0) >= count for mid, what in wanted.items()
            )

        async def run() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(run(), timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


Answerer = Callable[[str, str], Awaitable[str]]
