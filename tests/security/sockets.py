"""Open the project's sockets as a browser would: the whole ASGI stack, a session cookie,
an Origin and a Host (for the socket input, origin and fuzz tests)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

# Imported now, not at the first socket: importing it runs django.setup() again, which
# reconfigures logging and would drop the handler of a test's caplog.
from purplevisits.asgi import application

ORIGIN = b"http://localhost"
HOST = b"localhost"


def session_cookie(user: Any) -> bytes:
    """``sessionid=…`` of a fresh sign-in of ``user`` (two-factor passed, as staff must)."""
    client = Client()
    client.force_login(user)
    session = client.session
    try:  # the session rules of purplevisits.session_rules, when present
        from purplevisits.session_rules import mark_mfa_passed
    except ImportError:  # pragma: no cover - older trees: an authenticator is enough
        pass
    else:
        mark_mfa_passed(session, user)
        session.save()
    return f"sessionid={session.session_key}".encode()


async def browser_socket(
    path: str,
    user: Any = None,
    *,
    origin: bytes | None = ORIGIN,
    host: bytes = HOST,
    scheme: str = "ws",
    cookie: bytes | None = None,
) -> WebsocketCommunicator:
    """A communicator on ``purplevisits.asgi.application`` (not yet connected)."""
    headers = [(b"host", host)]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is None and user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["scheme"] = scheme
    return communicator


async def next_of(communicator: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict:
    """The next JSON message of ``type`` kind (earlier ones are skipped)."""
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message.get("type") == kind:
            return message


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 10) -> int:
    """The close code, skipping what is sent before it."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))
