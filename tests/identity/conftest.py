"""Photos for the identity tests: the real face fixtures and hostile files made here."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.factories import use_private_storage

FACES = Path(__file__).resolve().parent.parent / "fixtures" / "faces"


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Every test stores photos in its own directory, so it can see what was written."""
    return use_private_storage(settings, tmp_path)


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def face_bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def jpeg(
    width: int = 400, height: int = 400, colour: tuple[int, int, int] = (200, 180, 160)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG")
    return out.getvalue()


def side_by_side(*names: str) -> bytes:
    """One picture with several faces in it."""
    images = [Image.open(FACES / name).convert("RGB") for name in names]
    height = max(image.height for image in images)
    canvas = Image.new("RGB", (sum(image.width for image in images), height), (255, 255, 255))
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(side: int = 20000) -> bytes:
    """A tiny file that claims to be a side×side picture (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    # A few rows of compressed zeros: enough for a decoder to start allocating.
    idat = zlib.compress(b"\x00" * (side * 3 + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_with_script() -> bytes:
    """A valid PNG carrying a script in a text chunk."""
    out = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 120, 200)).save(out, format="PNG")
    data = out.getvalue()
    chunk = _png_chunk(b"tEXt", b"Comment\x00<script>alert(document.cookie)</script>")
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


def jpeg_with_exif_and_trailer() -> bytes:
    """A real photo with a GPS position in EXIF and an archive glued on after it."""
    image = Image.open(FACES / "obama.jpg")
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue() + b"PK\x03\x04polyglot-zip-trailer"


def staff_login(client, user) -> None:  # type: ignore[no-untyped-def]
    """Sign a staff member in as the sign-in page does: with the two-factor step of
    this session passed (force_login alone skips it)."""
    client.force_login(user)
    try:
        from purplevisits.session_rules import mark_mfa_passed
    except ImportError:  # before sessions recorded the two-factor step
        return
    session = client.session
    mark_mfa_passed(session, user)
    session.save()
