"""Hostile-input generators and the invariants checked by the fuzz tests and bench/fuzz.py.

Three targets:
- the photo uploads of identity (ID + selfie, dependant add, dependant photo),
- the booking form post,
- the signalling consumer (CallConsumer) through channels' WebsocketCommunicator.

Invariants: never a 500 or an exception, and nothing stored unless the page said it
accepted the input (a redirect); the consumer answers only with its contract messages
and close codes, and garbage never ends or pauses a call.
"""

from __future__ import annotations

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

# --- signalling ---------------------------------------------------------------------------

TYPES = ["offer", "heartbeat", "control", "leave", "answer", "ice", "state", "", "OFFER"]
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
    st.just(("text", "{" * 5000)),
    st.just(("text", "[" * 100_000)),
)
CONTRACT_CLOSE_CODES = {1000, 4403, 4408, 4409, 4410, 4429}
CONTRACT_MESSAGE_TYPES = {"state", "error", "warning", "ended", "message", "answer", "ice"}


async def socket_session(
    application: Any,
    path: str,
    user: Any,
    frames: list[tuple[str, Any]],
    tally: Tally,
    *,
    quiet: float = 0.05,
) -> None:
    """Open the call socket as ``user``, send ``frames``, check every answer."""
    from channels.testing import WebsocketCommunicator

    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=5)
    if not connected:
        tally.failures.append("could not connect")
        return
    closed = False
    try:
        for kind, payload in frames:
            if closed:
                break
            tally.cases += 1
            # Raw ASGI input: send_to() refuses empty frames, a browser can send them.
            await communicator.send_input({"type": "websocket.receive", kind: payload})
            # Drain what the consumer says, until it goes quiet.
            # (receive_output's own timeout would kill the application: ask first.)
            while not await communicator.receive_nothing(timeout=quiet, interval=quiet / 5):
                output = await communicator.receive_output(timeout=1)
                if output["type"] == "websocket.close":
                    closed = True
                    if output.get("code", 1000) not in CONTRACT_CLOSE_CODES:
                        tally.failures.append(f"close code {output.get('code')}")
                    break
                message = json.loads(output.get("text", "null"))
                if not isinstance(message, dict) or message.get("type") not in (
                    CONTRACT_MESSAGE_TYPES
                ):
                    tally.failures.append(f"unexpected message {str(message)[:100]}")
    except Exception as exc:  # noqa: BLE001 - the consumer crashed: that is the finding
        tally.failures.append(f"consumer raised {type(exc).__name__}: {exc}"[:300])
    finally:
        with contextlib.suppress(Exception):  # already closed
            await communicator.disconnect(timeout=2)
