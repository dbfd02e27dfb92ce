"""Issue 12 #10: uploads cost little before they are refused.

- A body over REQUEST_BODY_MAX_BYTES is answered 413 before it is read (declared
  length), or as soon as it passes the cap (no length), with a page that says what to do.
- A picture over the pixel limit is refused from its header, before any pixel is
  decoded; the limit is what a phone camera gives.
- A phone JPEG is decoded at reduced scale (only the pixels that are stored).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from PIL import Image, ImageFile

from identity.images import STORED_MAX_SIDE, ImageRejected, clean_photo
from purplevisits.body_limit import RequestBodyLimit

MB = 1024 * 1024


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def response_of(communicator: ApplicationCommunicator) -> tuple[int, dict, bytes]:
    start = await communicator.receive_output(10)
    assert start["type"] == "http.response.start"
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], dict(start["headers"]), body


class BodyReader:
    """An inner application that reads the body as Django does, and says how much."""

    def __init__(self) -> None:
        self.called = False
        self.read = 0
        self.disconnected = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


def test_the_service_refuses_a_40_mb_body_before_reading_it(settings) -> None:
    """The tester's case, through the real HTTP application: no body is ever sent here,
    so a stack that waited to read it would time out instead of answering."""
    from purplevisits.asgi import django_asgi_app

    settings.DEBUG = False  # the page a family sees in production

    async def post() -> tuple[int, dict, bytes]:
        communicator = ApplicationCommunicator(
            django_asgi_app,
            http_scope(
                "/me/identity/",
                [
                    (b"content-type", b"multipart/form-data; boundary=x"),
                    (b"content-length", str(40 * MB).encode()),
                ],
            ),
        )
        return await response_of(communicator)

    status, headers, body = async_to_sync(post)()
    assert status == 413
    page = body.decode()
    assert "What you sent is too large" in page
    assert "each photo can be up to 10 MB" in page and "at most 21 MB" in page
    assert "Nothing has been saved" in page
    assert headers[b"content-type"] == b"text/html; charset=utf-8"


def test_a_declared_length_over_the_cap_never_reaches_the_application() -> None:
    inner = BodyReader()
    app = RequestBodyLimit(inner, max_bytes=MB)

    async def post() -> int:
        communicator = ApplicationCommunicator(
            app, http_scope("/me/identity/", [(b"content-length", str(MB + 1).encode())])
        )
        status, _, _ = await response_of(communicator)
        return status

    assert async_to_sync(post)() == 413
    assert not inner.called


def test_a_body_without_a_length_is_cut_off_once_it_passes_the_cap() -> None:
    inner = BodyReader()
    app = RequestBodyLimit(inner, max_bytes=MB)
    chunk = b"x" * (256 * 1024)

    async def post() -> int:
        communicator = ApplicationCommunicator(app, http_scope("/me/identity/", []))
        for _ in range(5):  # 1.25 MB, then the client would go on
            await communicator.send_input(
                {"type": "http.request", "body": chunk, "more_body": True}
            )
        status, _, _ = await response_of(communicator)
        return status

    assert async_to_sync(post)() == 413
    assert inner.disconnected  # Django is told to stop reading
    assert inner.read <= MB


def test_a_body_within_the_cap_passes_through_whole() -> None:
    inner = BodyReader()
    app = RequestBodyLimit(inner, max_bytes=MB)

    async def post() -> tuple[int, bytes]:
        communicator = ApplicationCommunicator(
            app, http_scope("/me/identity/", [(b"content-length", str(MB).encode())])
        )
        await communicator.send_input(
            {"type": "http.request", "body": b"y" * (MB // 2), "more_body": True}
        )
        await communicator.send_input({"type": "http.request", "body": b"y" * (MB // 2)})
        status, _, body = await response_of(communicator)
        return status, body

    assert async_to_sync(post)() == (200, str(MB).encode())


def test_django_upload_settings_are_bounded(settings) -> None:
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= MB
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 2_621_440
    # Two photos at the limit and the form fit; little more does.
    assert 2 * settings.IDENTITY_UPLOAD_MAX_BYTES < settings.REQUEST_BODY_MAX_BYTES
    assert settings.REQUEST_BODY_MAX_BYTES <= 2 * settings.IDENTITY_UPLOAD_MAX_BYTES + 2 * MB


# --- Pixels --------------------------------------------------------------------------------


@pytest.fixture
def loads(monkeypatch):  # type: ignore[no-untyped-def]
    """The size of every picture whose pixels are decoded."""
    sizes: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def load(self):  # type: ignore[no-untyped-def]
        if self.tile:  # not yet decoded
            sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


def flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 160)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def phone_jpeg(width: int, height: int) -> bytes:
    small = Image.effect_noise((width // 16, height // 16), 60).convert("RGB")
    out = io.BytesIO()
    small.resize((width, height), Image.Resampling.BILINEAR).save(out, format="JPEG", quality=85)
    return out.getvalue()


def test_the_testers_small_36_megapixel_png_is_refused_from_its_header(loads) -> None:  # type: ignore[no-untyped-def]
    data = flat_png(6000, 6000)
    assert len(data) < 200 * 1024  # ~110 KB: well under the 10 MB file limit
    with pytest.raises(ImageRejected) as caught:
        clean_photo(io.BytesIO(data))
    assert caught.value.code == "too_many_pixels"
    assert "at most 25 megapixels" in caught.value.message
    assert loads == []  # not one pixel decoded


def test_the_pixel_limit_is_what_a_phone_camera_gives(settings) -> None:  # type: ignore[no-untyped-def]
    # 12 MP is the usual phone photo, 24 MP (5712×4284) the newest phones' default.
    assert 5712 * 4284 <= settings.IDENTITY_UPLOAD_MAX_PIXELS <= 25_000_000


def test_a_24_megapixel_phone_photo_is_accepted_and_decoded_at_half_scale(loads) -> None:  # type: ignore[no-untyped-def]
    stored = Image.open(io.BytesIO(clean_photo(io.BytesIO(phone_jpeg(5712, 4284))).read()))
    assert max(stored.size) == STORED_MAX_SIDE
    assert stored.size == (2000, 1500)
    # Decoded from the DCT at 1/2 scale (2856×2142), not at 5712×4284.
    assert loads and loads[0] == (2856, 2142)


def test_a_12_megapixel_phone_photo_is_decoded_at_half_scale(loads) -> None:  # type: ignore[no-untyped-def]
    stored = Image.open(io.BytesIO(clean_photo(io.BytesIO(phone_jpeg(4032, 3024))).read()))
    assert stored.size == (2000, 1500)
    assert loads[0] == (2016, 1512)


def test_orientation_survives_the_reduced_decode() -> None:
    image = Image.new("RGB", (4032, 3024), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    stored = Image.open(io.BytesIO(clean_photo(io.BytesIO(out.getvalue())).read()))
    assert stored.size == (1500, 2000)
    assert not stored.getexif()
