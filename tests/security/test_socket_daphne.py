"""The socket limits that live in daphne, against a real daphne serving the project.

- A message over daphne's 1 MiB limit used to drop the TCP connection (the browser saw
  1006) and count as a participant drop (issue 13, defect 4): now it is answered with
  ``too_large`` and the socket stays open (purplevisits/socket_transport.py).
- A foreign Origin gets a 403 to the handshake; a call path that is not a UUID used to
  get HTTP 500 (channels' "No route found"): now the socket closes with 4404.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from collections.abc import Iterator
from functools import partial

import pytest
from channels.db import database_sync_to_async
from channels.testing.live import make_application
from daphne.testing import DaphneProcess

from calls.models import CallConnection
from tests.security.sockets import session_cookie
from tests.security.world import World, build_world

MiB = 1024 * 1024


def _server_setup() -> None:
    """In the forked server: drop the parent's database sockets (as tests/e2e does), and
    start a fresh single-thread executor (the parent's thread does not exist here)."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.connection = None
    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


@pytest.fixture
def world(transactional_db) -> World:  # type: ignore[no-untyped-def]
    return build_world()


@pytest.fixture
def port(world: World, settings) -> Iterator[int]:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    process = DaphneProcess(
        "127.0.0.1", partial(make_application, static_wrapper=None), setup=_server_setup
    )
    process.start()
    if not process.ready.wait(timeout=60):
        process.terminate()
        raise RuntimeError("daphne did not start within 60 s")
    try:
        yield process.port.value
    finally:
        process.terminate()
        process.join(10)


def _masked(data: bytes) -> bytes:
    mask = os.urandom(4)
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    value = int.from_bytes(data, "big") ^ int.from_bytes(key, "big")
    return mask + value.to_bytes(len(data), "big")


class Socket:
    """A minimal WebSocket client (stdlib only), enough to send huge and split frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def handshake(
        cls, port: int, path: str, *, cookie: bytes = b"", origin: str | None = None
    ) -> tuple[str, Socket]:
        """(status line, socket) of an opening handshake."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        key = base64.b64encode(os.urandom(16)).decode()
        origin = f"http://127.0.0.1:{port}" if origin is None else origin
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
            f"Cookie: {cookie.decode()}\r\n\r\n"
        )
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        return head.split(b"\r\n", 1)[0].decode(), cls(reader, writer)

    async def send_frame(self, payload: bytes, *, opcode: int = 1, fin: bool = True) -> None:
        length = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if length < 126:
            head += bytes([0x80 | length])
        elif length < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", length)
        self.writer.write(head + _masked(payload))
        await self.writer.drain()

    async def send_json(self, message: dict) -> None:
        await self.send_frame(json.dumps(message).encode())

    async def receive(self, timeout: float = 30) -> tuple[str, object]:
        """("text", message) or ("close", code); pings are skipped."""
        while True:
            first = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            opcode, length = first[0] & 0x0F, first[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
            if opcode == 8:
                return "close", struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if opcode == 1:
                return "text", json.loads(payload)

    async def next_of(self, kind: str) -> dict:
        while True:
            what, message = await self.receive()
            assert what == "text", f"closed with {message} while waiting for {kind}"
            if message["type"] == kind:  # type: ignore[index]
                return message  # type: ignore[return-value]

    def close(self) -> None:
        self.writer.close()


def _offer_of(size: int) -> bytes:
    head = b'{"type": "offer", "sdp": "'
    return head + b"a" * (size - len(head) - 2) + b'"}'


def _family_connections(call_id: object) -> list[tuple[object, str]]:
    rows = CallConnection.objects.filter(call_id=call_id, role="family")
    return list(rows.values_list("left_at", "left_reason"))


async def _open_call(port: int, world: World) -> Socket:
    cookie = await database_sync_to_async(session_cookie)(world.users["family_a"])
    call = world.objects["call_a"]
    status, socket = await Socket.handshake(port, f"/ws/calls/{call.pk}/", cookie=cookie)  # type: ignore[attr-defined]
    assert " 101 " in status + " ", status
    await socket.next_of("state")
    return socket


@pytest.mark.parametrize(
    "frames",
    [[MiB + 1000], [600 * 1024, 600 * 1024], [16 * MiB]],
    ids=["one frame over 1 MiB", "two frames of 600 KB", "16 MiB"],
)
async def test_a_message_over_daphnes_limit_is_refused_and_the_socket_stays(
    port, world, frames
) -> None:  # type: ignore[no-untyped-def]
    socket = await _open_call(port, world)
    try:
        payload = _offer_of(sum(frames))
        start = 0
        for index, size in enumerate(frames):
            last = index == len(frames) - 1
            await socket.send_frame(
                payload[start : start + size], opcode=0 if index else 1, fin=last
            )
            start += size
        error = await socket.next_of("error")
        assert error["code"] == "too_large" and error["message"]
        # Still open, and the consumer still answers (it never saw the huge message).
        await socket.send_json({"type": "nope"})
        assert (await socket.next_of("error"))["code"] == "unknown_type"
        # Not a drop: the family's one connection is still open.
        call_id = world.objects["call_a"].pk  # type: ignore[attr-defined]
        rows = await database_sync_to_async(_family_connections)(call_id)
        assert rows == [(None, "")]
    finally:
        socket.close()


async def test_a_message_over_the_apps_limit_is_refused_by_the_consumer(port, world) -> None:  # type: ignore[no-untyped-def]
    socket = await _open_call(port, world)
    try:
        await socket.send_frame(_offer_of(100 * 1024))
        error = await socket.next_of("error")
        assert error["code"] == "too_large" and "64 KB" in error["message"]
        await socket.send_json({"type": "nope"})
        assert (await socket.next_of("error"))["code"] == "unknown_type"
    finally:
        socket.close()


async def test_a_foreign_origin_gets_403(port, world) -> None:  # type: ignore[no-untyped-def]
    cookie = await database_sync_to_async(session_cookie)(world.users["family_a"])
    call = world.objects["call_a"]
    for origin in ("http://127.0.0.1:9", f"https://127.0.0.1:{port}", "https://evil.example"):
        status, socket = await Socket.handshake(
            port,
            f"/ws/calls/{call.pk}/",  # type: ignore[attr-defined]
            cookie=cookie,
            origin=origin,
        )
        socket.close()
        assert status.startswith("HTTP/1.1 403"), (origin, status)


async def test_a_path_that_is_not_a_call_closes_with_4404(port, world) -> None:  # type: ignore[no-untyped-def]
    cookie = await database_sync_to_async(session_cookie)(world.users["family_a"])
    for path in ("/ws/calls/not-a-uuid/", "/ws/no-such-thing/"):
        status, socket = await Socket.handshake(port, path, cookie=cookie)
        try:
            assert " 101 " in status + " ", (path, status)  # before: HTTP/1.1 500
            assert await socket.receive() == ("close", 4404)
        finally:
            socket.close()
