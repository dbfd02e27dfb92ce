"""One call inside a relay process: a peer per participant, gate tracks, the timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls.relay import forward
from calls.relay.tracks import EncodedSource, Gate, OutputTrack

logger = logging.getLogger(__name__)

SIDES = ("family", "prisoner")
OTHER_SIDE = {"family": "prisoner", "prisoner": "family"}
# What each side sees until the other side's video arrives: the family waits for the
# prison, the prison laptop for its visitor.
# Burnt into video before anyone's language is known: both languages.
WAITING_TEXT = {
    "family": "Waiting for the prison\nYn aros am y carchar",
    "prisoner": "Waiting for your visitor\nYn aros am eich ymwelydd",
}
MONITOR_WAITING_TEXT = {
    "family": "Family: not connected\nTeulu: heb gysylltu",
    "prisoner": "Prisoner: not connected\nCarcharor: heb gysylltu",
}

VideoObserver = Callable[[av.VideoFrame], None]
# Called with (previous state, new state) every time a ``call.state`` arrives.
StateObserver = Callable[[dict[str, Any], dict[str, Any]], None]
# Called with (role, channel) when a participant's peer has been answered.
PeerObserver = Callable[[str, str], None]
# Awaited when the call closes (e.g. to stop its face checks).
CloseCallback = Callable[[], Awaitable[Any]]
# Called with (call_id) when the timer runs out; returns when the database says so.
ExpireCallback = Callable[[str], Awaitable[Any]]


def placeholder_texts() -> list[str]:
    """Every waiting text a relay output can show (encoded once, at start)."""
    return [*WAITING_TEXT.values(), *MONITOR_WAITING_TEXT.values()]


class RelayOfferError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rtc_configuration() -> RTCConfiguration:
    """ICE servers from settings.ICE_SERVERS (default none: host candidates only)."""
    servers = []
    for entry in settings.ICE_SERVERS:
        servers.append(
            RTCIceServer(
                urls=entry["urls"],
                username=entry.get("username"),
                credential=entry.get("credential"),
            )
        )
    # MAX_COMPAT: while reading an offer aiortc gives every m-line its own transport,
    # then moves all the m-lines of the offer's BUNDLE group onto the first one. With
    # the default (BALANCED) the second m-line of a kind shares the first one's
    # transport, is marked bundled already, and stays on that transport when BUNDLE
    # discards it: its answer said "port 9, no candidates" and it never got media
    # (a monitor's fourth transceiver). Browsers always offer BUNDLE.
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_COMPAT)


def _transport_identity(sdp: str) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """(ICE username fragments and passwords, DTLS fingerprints) of a description."""
    description = aiortc_sdp.SessionDescription.parse(sdp)
    ice: set[tuple[str, str]] = set()
    fingerprints: set[str] = set()
    for media in description.media:
        if media.ice is not None:
            ice.add((media.ice.usernameFragment or "", media.ice.password or ""))
        if media.dtls is not None:
            fingerprints.update(f"{f.algorithm} {f.value}".lower() for f in media.dtls.fingerprints)
    return frozenset(ice), frozenset(fingerprints)


def same_transport(pc: RTCPeerConnection, offer_sdp: str) -> bool:
    """Whether ``offer_sdp`` comes from the client peer connection ``pc`` is talking to.

    True when the offer's ICE credentials and DTLS fingerprints are those of the remote
    description ``pc`` has (a renegotiation on the same client connection, no ICE
    restart). A brand-new client peer connection (reload, ``new RTCPeerConnection``
    after a network change) has new ones; so does an ICE restart, which aiortc cannot
    perform on an existing connection: those get a fresh relay peer.
    """
    current = pc.remoteDescription
    if current is None or pc.connectionState in ("failed", "closed"):
        return False
    try:
        offered = _transport_identity(offer_sdp)
        existing = _transport_identity(current.sdp)
    except Exception:
        return False  # an unusable offer: the fresh-peer path refuses it
    return bool(offered[0] and offered[1]) and offered == existing


@dataclass
class Received:
    """A track the participant sends, tapped for forwarding (calls/relay/forward.py)."""

    track: MediaStreamTrack
    tap: forward.ReceiverTap
    control: forward.ReceiverControl


@dataclass
class Peer:
    role: str
    pc: RTCPeerConnection
    outputs: list[OutputTrack] = field(default_factory=list)
    tracks: dict[str, str] = field(default_factory=dict)
    # Tracks received from the participant, attached as sources once the offer is
    # answered (a refused offer must not replace the media of the peer that works).
    received: list[Received] = field(default_factory=list)


class RelayCall:
    """Media of one call. Everything runs on the relay's event loop."""

    def __init__(self, call_id: str, *, on_expire: ExpireCallback | None = None) -> None:
        self.call_id = call_id
        self.gate = Gate()
        self.peers: dict[str, Peer] = {}  # by the participant socket's channel name
        self.sources: dict[tuple[str, str], EncodedSource] = {}
        self._drains: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._observers: dict[str, list[VideoObserver]] = {side: [] for side in SIDES}
        self.frames_in: dict[str, int] = {side: 0 for side in SIDES}
        self.status = "waiting"
        self.ends_at: datetime | None = None
        self.slot_ends_at: datetime | None = None
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._on_expire = on_expire
        self._timer: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self.state: dict[str, Any] = {}
        self.held = False  # gate closed locally, ahead of the database's pause
        self._state_observers: list[StateObserver] = []
        self._peer_observers: list[PeerObserver] = []
        self._close_callbacks: list[CloseCallback] = []

    # --- the face-check hook ---------------------------------------------------------

    def add_video_observer(self, side: str, callback: VideoObserver) -> Callable[[], None]:
        """Call ``callback(frame)`` with every decoded video frame received from ``side``.

        The callback runs on the relay's event loop: it must be cheap and never block
        (copy what it needs, hand heavy work to a process pool, sample frames itself).
        Its exceptions are logged and ignored. Returns a function that removes it.
        """
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        self._observers[side].append(callback)

        def remove() -> None:
            if callback in self._observers[side]:
                self._observers[side].remove(callback)

        return remove

    def add_state_observer(self, callback: StateObserver) -> None:
        """Call ``callback(previous, new)`` after each ``call.state`` is applied."""
        self._state_observers.append(callback)

    def add_peer_observer(self, callback: PeerObserver) -> None:
        """Call ``callback(role, channel)`` after a participant's offer was answered."""
        self._peer_observers.append(callback)

    def add_close_callback(self, callback: CloseCallback) -> None:
        """Await ``callback()`` when the call closes (before its peers are closed)."""
        self._close_callbacks.append(callback)

    def hold(self) -> None:
        """Close the gate now (placeholder and silence), ahead of the database.

        A face check that confirmed a stranger calls this before it asks the services
        to pause the call: the pause reaches the relay through the channel layer some
        milliseconds later, and no live frame may pass meanwhile. The hold ends when a
        state that is not ``live`` arrives, or with :meth:`release`.
        """
        self.held = True
        self._set_gate()

    def release(self) -> None:
        """End a hold (the database refused the pause, or the call resumed)."""
        self.held = False
        self._set_gate()

    def _set_gate(self) -> None:
        self.gate.set(
            open=self.status == "live" and not self.held,
            paused=self.status == "paused" or (self.held and self.status == "live"),
        )

    # --- state -----------------------------------------------------------------------

    def apply_state(self, state: dict[str, Any]) -> None:
        """A ``call.state`` payload from the services (the database's view)."""
        previous = self.state
        self.state = dict(state)
        self.status = state.get("status", self.status)
        self.ends_at = _parse(state.get("ends_at"))
        self.slot_ends_at = _parse(state.get("slot_ends_at")) or self.slot_ends_at
        if self.status != "live":
            self.held = False  # the database has caught up (paused or ended)
        self._set_gate()
        self._state_changed.set()
        for observer in list(self._state_observers):
            try:
                observer(previous, self.state)
            except Exception:
                logger.exception("state observer failed on call %s", self.call_id)
        if self._timer is None and self._on_expire is not None and self.status != "ended":
            self._timer = asyncio.ensure_future(self._run_timer())

    async def _run_timer(self) -> None:
        """Enforce the end time: ask the services to expire the call when it is due."""
        while not self.closed.is_set() and self.status != "ended":
            deadline = self.ends_at if self.status == "live" else self.slot_ends_at
            wait = 5.0 if deadline is None else (deadline - timezone.now()).total_seconds()
            if wait <= 0 and self._on_expire is not None:
                try:
                    await self._on_expire(self.call_id)
                except Exception:
                    logger.exception("expiring call %s failed", self.call_id)
                wait = 1.0  # the ended state arrives through the channel layer
            self._state_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_changed.wait(), timeout=min(max(wait, 0.05), 5))

    # --- peers -----------------------------------------------------------------------

    async def offer(self, *, role: str, channel: str, sdp: str) -> tuple[str, dict[str, str]]:
        """Answer a participant's complete offer (no trickle).

        A new offer from the same socket whose ICE credentials and DTLS fingerprints
        are those of the peer connection the relay already has renegotiates on that
        peer (same transport: media goes on). Any other offer (a new client peer
        connection, or an ICE restart, which aiortc cannot do) gets a fresh peer, which
        replaces the old one once it has been answered. A refused offer changes nothing.
        """
        async with self._lock:
            if self.status == "ended":
                raise RelayOfferError("call_ended", "The call has ended.")
            old = self.peers.get(channel)
            if old is not None and old.role == role and same_transport(old.pc, sdp):
                return await self._renegotiate(old, sdp)
            pc = RTCPeerConnection(configuration=rtc_configuration())
            peer = Peer(role=role, pc=pc)
            try:
                sdp = forward.forwardable_offer(sdp)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                self._tap_received(peer)
                self._add_outputs(peer)
                answer = await pc.createAnswer()
                await pc.setLocalDescription(answer)  # aiortc gathers every candidate here
            except Exception as exc:
                await pc.close()
                for output in peer.outputs:
                    output.stop()
                raise RelayOfferError("bad_sdp", f"The offer could not be used: {exc}") from exc
            self.peers[channel] = peer
            self._attach_received(peer)
            if old is not None:
                await self._close_peer(old)

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState == "failed":
                    logger.info("peer %s of call %s failed", role, self.call_id)

            for observer in list(self._peer_observers):
                try:
                    observer(role, channel)
                except Exception:
                    logger.exception("peer observer failed on call %s", self.call_id)
            return pc.localDescription.sdp, peer.tracks

    async def _renegotiate(self, peer: Peer, sdp: str) -> tuple[str, dict[str, str]]:
        """A new offer on the client's existing peer connection: answer on ours."""
        pc = peer.pc
        try:
            sdp = forward.forwardable_offer(sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._tap_received(peer)  # transceivers the new offer added, if any
            self._add_outputs(peer)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            # The transport and the media already flowing are untouched.
            raise RelayOfferError("bad_sdp", f"The offer could not be used: {exc}") from exc
        self._attach_received(peer)
        return pc.localDescription.sdp, peer.tracks

    def _tap_received(self, peer: Peer) -> None:
        """Tap every receiver of the participant's media not tapped yet (before it starts)."""
        if peer.role not in SIDES:
            return  # monitors send nothing
        side = peer.role
        for transceiver in peer.pc.getTransceivers():
            receiver = transceiver.receiver
            track = receiver.track
            if track is None or forward.is_tapped(receiver):
                continue
            decode = self._wants_decoded(side) if track.kind == "video" else _never
            tap, control = forward.tap_receiver(receiver, track.kind, decode)
            peer.received.append(Received(track, tap, control))

    def _wants_decoded(self, side: str) -> Callable[[], bool]:
        """Whether ``side``'s video must be decoded now: only for its video observers."""
        return lambda: bool(self._observers[side])

    def _attach_received(self, peer: Peer) -> None:
        received, peer.received[:] = list(peer.received), []
        for item in received:
            self._attach_source(peer.role, item)

    def _add_outputs(self, peer: Peer) -> None:
        """Fill every transceiver of the offer with a track from the right side.

        The n-th transceiver of a kind gets the n-th side (monitors: family, then
        prisoner), whatever order the kinds come in. On a renegotiation only the
        transceivers that have no output yet are filled.
        """
        wanted_sides: dict[str, list[str]]
        if peer.role == "monitor":
            wanted_sides = {"audio": list(SIDES), "video": list(SIDES)}
        else:
            other = OTHER_SIDE[peer.role]
            wanted_sides = {"audio": [other], "video": [other]}
        used: dict[str, int] = {"audio": 0, "video": 0}
        for transceiver in peer.pc.getTransceivers():
            kind = transceiver.kind
            if isinstance(transceiver.sender.track, OutputTrack):
                used[kind] += 1
                continue
            sides = wanted_sides.get(kind, [])
            if used[kind] >= len(sides):
                continue  # more transceivers than we have media for: leave them empty
            side = sides[used[kind]]
            used[kind] += 1
            gate = None if peer.role == "monitor" else self.gate
            waiting = WAITING_TEXT[peer.role] if peer.role in SIDES else MONITOR_WAITING_TEXT[side]
            output = OutputTrack(kind, side, gate, waiting_text=waiting)
            output.set_source(self.sources.get((side, kind)))
            transceiver.sender.replaceTrack(output)
            forward.hook_sender(
                transceiver.sender,
                on_keyframe_request=output.keyframe_requested,
                on_remb=output.bitrate_reported,
            )
            transceiver.direction = "sendrecv" if peer.role in SIDES else "sendonly"
            peer.outputs.append(output)
            if transceiver.mid is not None:
                peer.tracks[transceiver.mid] = side

    def _attach_source(self, side: str, received: Received) -> None:
        """The participant's media becomes what every output of that side sends."""
        track = received.track
        key = (side, track.kind)
        old = self.sources.get(key)
        source = EncodedSource(side, track.kind, received.control)
        if track.kind == "video":

            def sink(frame: forward.EncodedFrame) -> None:
                self.frames_in[side] += 1
                source.deliver(frame)

            received.tap.sink = sink
        else:
            received.tap.sink = source.deliver
        self.sources[key] = source
        old_drain = self._drains.pop(key, None)
        if old_drain is not None:
            old_drain.cancel()
        # The receiver's track gives the decoded video the face checks asked for (and
        # ends when the participant's stream ends): it is always read.
        self._drains[key] = asyncio.ensure_future(self._drain(side, track))
        for peer in self.peers.values():
            for output in peer.outputs:
                if output.side == side and output.kind == track.kind:
                    output.set_source(source)
        if old is not None:
            old.close()
        # Peers being answered right now pick the source up in _add_outputs.

        @track.on("ended")
        def on_ended() -> None:
            if self.sources.get(key) is source:
                del self.sources[key]
                source.close()

    async def _drain(self, side: str, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind != "video":
                    continue
                for callback in list(self._observers[side]):
                    try:
                        callback(frame)  # type: ignore[arg-type]
                    except Exception:
                        logger.exception("video observer failed on call %s", self.call_id)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def leave(self, channel: str) -> None:
        async with self._lock:
            peer = self.peers.pop(channel, None)
            if peer is not None:
                await self._close_peer(peer)

    async def _close_peer(self, peer: Peer) -> None:
        for output in peer.outputs:
            output.stop()
        await peer.pc.close()
        if peer.role in SIDES and not any(p.role == peer.role for p in self.peers.values()):
            for kind in ("audio", "video"):
                source = self.sources.pop((peer.role, kind), None)
                if source is not None:
                    source.close()
                drain = self._drains.pop((peer.role, kind), None)
                if drain is not None:
                    drain.cancel()

    async def close(self) -> None:
        """The call ended: close every peer connection."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._state_changed.set()
        for callback in self._close_callbacks:
            try:
                await callback()
            except Exception:
                logger.exception("close callback failed on call %s", self.call_id)
        async with self._lock:
            peers, self.peers = list(self.peers.values()), {}
            for peer in peers:
                await self._close_peer(peer)
            for drain in self._drains.values():
                drain.cancel()
            self._drains.clear()
        if self._timer is not None:
            self._timer.cancel()

    @property
    def load(self) -> int:
        return len(self.peers)


def _never() -> bool:
    return False


def _parse(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None
