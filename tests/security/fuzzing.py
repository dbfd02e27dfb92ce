"""Hostile-input generators and the invariants checked by the fuzz tests and bench/fuzz.py.

Targets:
- the photo uploads of identity (ID + selfie, dependant add, dependant photo),
- the booking form post,
- the two socket consumers, the call's (signalling) and the staff dashboard's, through
  the whole ASGI stack (Origin check, session cookie, router) with channels'
  WebsocketCommunicator: random, nested, deep, huge and hostile JSON, binary frames.

Invariants: never a 500 or an exception, and nothing stored unless the page said it
accepted the input (a redirect); a consumer answers only with its contract messages
and close codes, a frame the reader refuses (purplevisits/socket_json.py) gets its
``error`` reply and the socket stays open, and garbage never ends or pauses a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from PIL import Image

# --- uploads -------------------------------------------------------------------------------


def _image_bytes(fmt: str, width: int, height: int, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb's first step)."""
    data = bytearray(_image_bytes("PNG", 1, 1, "L"))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"

upload_bytes = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=512).map(lambda b: JPEG_HEAD + b),
    st.binary(max_size=512).map(lambda b: PNG_HEAD + b),
    st.builds(
        lambda fmt, w, h, cut: _image_bytes(fmt, w, h, "RGB")[:cut],
        st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP"]),
        st.integers(1, 64),
        st.integers(1, 64),
        st.integers(0, 400),
    ),
    st.builds(
        _image_bytes,
        st.sampled_from(["JPEG", "PNG", "GIF"]),
        st.integers(1, 120),
        st.integers(1, 120),
        st.sampled_from(["RGB", "L", "1"]),
    ),
    st.builds(_png_claiming, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
    st.just(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    st.just(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
    st.just(b""),
)
filenames = st.one_of(
    st.sampled_from(
        ["photo.jpg", "../../etc/passwd", "a.svg", "x.php.jpg", "\u202ejpg.exe", "", "." * 300]
    ),
    st.text(max_size=80),
)
content_types = st.sampled_from(
    ["image/jpeg", "image/png", "image/svg+xml", "text/html", "application/octet-stream", ""]
)
upload = st.tuples(filenames, content_types, upload_bytes)

form_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["", " ", "0", "-1", "1e309", "2016-03-01", "9999-99-99", "null", "<b>x</b>"]),
    st.just("x" * 10_000),
)


@dataclass
class Tally:
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def record(self, status: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def as_file(case: tuple[str, str, bytes]) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    name, content_type, data = case
    # The test client sends file.name; Django refuses to build a file without a base name
    # (the server's multipart parser sanitises names the same way).
    name = os.path.basename(name.replace("\x00", ""))
    if name in ("", ".", ".."):
        name = "blob"
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_counts() -> tuple[int, ...]:
    from bookings.models import Booking
    from identity.models import Dependant, IdentityCheck

    return (IdentityCheck.objects.count(), Dependant.objects.count(), Booking.objects.count())


def post_and_check(
    client: Any, path: str, data: dict[str, Any], tally: Tally, photos: Callable[[], Any]
) -> None:
    """POST ``data``; a refusal must store nothing, and nothing may be a 500."""
    before = stored_counts()
    before_photo = photos()
    try:
        response = client.post(path, data)
    except Exception as exc:  # noqa: BLE001 - any exception is the finding
        tally.cases += 1
        tally.failures.append(f"{path}: {type(exc).__name__}: {exc}"[:300])
        return
    tally.record(response.status_code)
    if response.status_code >= 500:
        tally.failures.append(f"{path}: {response.status_code}")
    elif response.status_code != 302 and (stored_counts() != before or photos() != before_photo):
        tally.failures.append(f"{path}: refused ({response.status_code}) but stored")


# --- the booking form ----------------------------------------------------------------------

ids = st.one_of(st.integers(-(2**63), 2**63), form_text)
booking_post = st.fixed_dictionaries(
    {},
    optional={
        "connection": ids,
        "slot": st.one_of(form_text, st.datetimes().map(lambda d: d.strftime("%Y%m%dT%H%M"))),
        "visitors": st.lists(ids, max_size=30),
        "dependants": st.lists(ids, max_size=30),
        "aup": st.sampled_from(["on", "true", "", "0", "x" * 500]),
        "idempotency_key": form_text,
    },
)

# --- sockets: the call (signalling) and dashboard consumers ---------------------------------

TYPES = ["offer", "heartbeat", "control", "leave", "answer", "ice", "state", "", "OFFER"]
DASHBOARD_TYPES = ["refresh", "ack", "heartbeat", "snapshot", "call", "alert", "", "ACK"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
sdp_text = st.one_of(
    st.text(max_size=500),
    st.just("v=0\r\n" + "a=x\r\n" * 20_000),  # larger than 64 KB
    st.lists(
        st.sampled_from(
            [
                "v=0",
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "m=video 9 UDP/TLS/RTP/SAVPF 96",
                "a=sendrecv",
                "a=recvonly",
                "a=fingerprint:sha-256 00",
                "a=ice-ufrag:x",
                "c=IN IP4 0.0.0.0",
                "m=application 9 DTLS/SCTP 5000",
            ]
        ),
        max_size=30,
    ).map("\r\n".join),
)


def _nested(depth: int, opener: str, closed: bool, inner: str) -> str:
    """``depth`` levels of ``opener`` around ``inner``, closed or left open."""
    closer = {"[": "]", '{"a":': "}", '{"type":': "}", '[{"a":': "}]", '{"a":[': "]}"}[opener]
    return opener * depth + (inner + closer * depth if closed else "")


# Nested, deep, huge and hostile JSON (issue 12 finding 6: 1,500 brackets crashed both
# consumers with RecursionError).
deep_json = st.builds(
    _nested,
    st.one_of(st.integers(1, 40), st.integers(900, 5000), st.just(100_000)),
    st.sampled_from(["[", '{"a":', '{"type":', '[{"a":', '{"a":[']),
    st.booleans(),
    st.sampled_from(["1", '"x"', "[]", '"[[[["', "null", ""]),
)
hostile_json = st.one_of(
    deep_json,
    # JSON-looking noise: brackets, quotes, escapes, numbers, keywords.
    st.text(alphabet='[]{}"\\:,0123456789.eE+-ntrufals ', max_size=3000),
    # Either side of the size limits (4 KB dashboard, 64 KB call).
    st.sampled_from([4096, 4097, 64 * 1024, 64 * 1024 + 1, 70_000]).map(
        lambda n: '{"type": "heartbeat", "x": "' + "x" * max(0, n - 29) + '"}'
    ),
    st.sampled_from(
        [
            '{"type": NaN}',
            '{"type": "heartbeat", "x": Infinity}',
            '{"type": "heartbeat", "x": -Infinity}',
            "1" * 5000,  # past Python's int-from-text digit limit
            '{"type": "heartbeat", "x": 1e999999}',
            '{"type": "\\ud800"}',  # an escaped lone surrogate
            '{"type": "heartbeat", "type": "offer"}',
            '{"type": "heartbeat"}{"type": "heartbeat"}',
            '\ufeff{"type": "heartbeat"}',
            '{"type": "heartbeat", "\\u0000": "\\u0000"}',
            "",
            " ",
        ]
    ),
)
signalling_object = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(TYPES), st.text(max_size=30))},
    optional={
        "sdp": st.one_of(sdp_text, json_values),
        "action": st.one_of(st.sampled_from(["pause", "resume", "message"]), json_values),
        "reason": json_values,
        "text": json_values,
    },
)
signalling_frame = st.one_of(
    signalling_object.map(lambda m: ("text", json.dumps(m))),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.binary(min_size=1, max_size=300).map(lambda b: ("bytes", b)),
    hostile_json.map(lambda t: ("text", t)),
)
dashboard_object = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(DASHBOARD_TYPES), st.text(max_size=30))},
    optional={"alert": st.one_of(st.integers(-(2**63), 2**63), json_values)},
)
dashboard_frame = st.one_of(
    dashboard_object.map(lambda m: ("text", json.dumps(m))),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.binary(min_size=1, max_size=300).map(lambda b: ("bytes", b)),
    hostile_json.map(lambda t: ("text", t)),
)


@dataclass(frozen=True)
class SocketContract:
    """What a consumer may answer (SIGNALLING.md, docs/signalling.md) and its size limit."""

    message_types: frozenset[str]
    close_codes: frozenset[int]
    max_bytes: int


CALL_CONTRACT = SocketContract(
    frozenset({"state", "error", "warning", "ended", "message", "answer", "ice"}),
    frozenset({1000, 4403, 4408, 4409, 4410, 4429}),
    64 * 1024,
)
DASHBOARD_CONTRACT = SocketContract(
    frozenset({"snapshot", "call", "alert", "heartbeat", "error"}),
    frozenset({4403}),
    4096,
)
# Kept for callers of the first version.
CONTRACT_CLOSE_CODES = set(CALL_CONTRACT.close_codes)
CONTRACT_MESSAGE_TYPES = set(CALL_CONTRACT.message_types)


@dataclass
class SocketTally(Tally):
    """Cases are frames; ``errors`` counts ``error`` replies (refusals, as designed);
    ``failures`` are crashes: exceptions, unexpected messages or close codes, a refused
    frame without its error."""

    errors: int = 0


def expected_refusal(kind: str, payload: Any, max_bytes: int) -> str | None:
    """The error code the consumer must answer for this frame, if the reader refuses it."""
    from purplevisits.socket_json import Refusal, socket_message

    refusal = socket_message(payload if kind == "text" else None, max_bytes=max_bytes)
    return refusal.code if isinstance(refusal, Refusal) else None


async def socket_session(
    path: str,
    cookie: bytes,
    frames: list[tuple[str, Any]],
    tally: Tally,
    *,
    quiet: float = 0.05,
    contract: SocketContract = CALL_CONTRACT,
) -> None:
    """Open ``path`` through the whole ASGI stack (Origin check, session cookie, router)
    as a browser would, send ``frames``, check every answer against ``contract``."""
    from tests.security.sockets import browser_socket

    communicator = await browser_socket(path, cookie=cookie)
    connected, code = await communicator.connect(timeout=10)
    if not connected:
        tally.failures.append(f"could not connect ({code})")
        return
    closed = False

    def check(output: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal closed
        if output["type"] == "websocket.close":
            closed = True
            if output.get("code", 1000) not in contract.close_codes:
                tally.failures.append(f"close code {output.get('code')}")
            return None
        message = json.loads(output.get("text", "null"))
        if not isinstance(message, dict) or message.get("type") not in contract.message_types:
            tally.failures.append(f"unexpected message {str(message)[:100]}")
            return None
        if message["type"] == "error":
            if isinstance(tally, SocketTally):
                tally.errors += 1
            if not message.get("code") or not message.get("message"):
                tally.failures.append(f"error without code or words {str(message)[:100]}")
        return message

    try:
        for kind, payload in frames:
            if closed:
                break
            tally.cases += 1
            due = expected_refusal(kind, payload, contract.max_bytes)
            # Raw ASGI input: send_to() refuses empty frames, a browser can send them.
            await communicator.send_input({"type": "websocket.receive", kind: payload})
            # A refused frame is owed its error: wait for it (generous ceiling; a late
            # answer to an earlier frame may come first, as the consumer answers in order).
            while due is not None and not closed:
                message = check(await communicator.receive_output(timeout=10))
                if message is not None and message.get("code") in (due, "rate_limited"):
                    due = None
            # Then drain what else the consumer says, until it goes quiet.
            # (receive_output's own timeout would kill the application: ask first.)
            while not closed and not await communicator.receive_nothing(
                timeout=quiet, interval=quiet / 5
            ):
                check(await communicator.receive_output(timeout=10))
    except Exception as exc:  # noqa: BLE001 - the consumer crashed: that is the finding
        tally.failures.append(f"consumer raised {type(exc).__name__}: {exc}"[:300])
    finally:
        # Already closed, or the application crashed (its future is cancelled).
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect(timeout=2)
