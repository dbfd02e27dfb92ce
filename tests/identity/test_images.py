"""Uploads: only real JPEG/PNG photos within the limits, always re-encoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from identity.images import ImageRejected, clean_photo
from tests.identity.conftest import (
    face_bytes,
    jpeg,
    jpeg_with_exif_and_trailer,
    png_bomb,
    png_with_script,
)


def reject_code(data: bytes) -> str:
    with pytest.raises(ImageRejected) as caught:
        clean_photo(io.BytesIO(data))
    assert caught.value.message  # always something a person can act on
    return caught.value.code


def test_a_real_photo_is_re_encoded_as_jpeg() -> None:
    result = clean_photo(io.BytesIO(face_bytes("obama.jpg")))
    image = Image.open(io.BytesIO(result.read()))
    assert image.format == "JPEG"
    assert image.size == (512, 640)


def test_png_becomes_jpeg_and_transparency_becomes_white() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(out, format="PNG")
    image = Image.open(io.BytesIO(clean_photo(io.BytesIO(out.getvalue())).read()))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert image.getpixel((150, 150)) == (255, 255, 255)


def test_text_renamed_jpg_is_refused() -> None:
    assert reject_code(b"This is not a photo, just text saved as photo.jpg\n" * 10) == (
        "not_an_image"
    )


def test_gif_and_svg_are_refused_by_content() -> None:
    assert reject_code(b"GIF89a" + b"\x00" * 500) == "not_an_image"
    assert reject_code(b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>') == (
        "not_an_image"
    )


def test_truncated_jpeg_is_refused() -> None:
    import face_recognition  # noqa: F401 - it switches Pillow to accept truncated files

    data = face_bytes("obama.jpg")
    assert reject_code(data[: len(data) // 2]) == "damaged"


def test_one_pixel_image_is_refused() -> None:
    assert reject_code(jpeg(1, 1)) == "too_small"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    assert reject_code(png_bomb(20000)) == "too_many_pixels"


def test_just_over_the_pixel_limit_is_refused_from_the_header(settings) -> None:  # type: ignore[no-untyped-def]
    # 6500×6500 = 42 MP claimed by a file of a few hundred bytes.
    assert reject_code(png_bomb(6500)) == "too_many_pixels"


def test_png_with_embedded_script_is_refused() -> None:
    assert reject_code(png_with_script()) == "active_content"


def test_file_over_10_mb_is_refused_without_reading_it() -> None:
    data = b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024)
    assert reject_code(data) == "too_large"


def test_empty_file_is_refused() -> None:
    assert reject_code(b"") == "empty"


def test_metadata_and_trailing_polyglot_data_are_stripped() -> None:
    original = jpeg_with_exif_and_trailer()
    assert b"SecretCamera" in original and b"PK\x03\x04" in original
    cleaned = clean_photo(io.BytesIO(original)).read()
    assert b"SecretCamera" not in cleaned
    assert b"PK\x03\x04" not in cleaned
    assert not Image.open(io.BytesIO(cleaned)).getexif()


def test_exif_orientation_is_applied_before_it_is_stripped() -> None:
    image = Image.new("RGB", (400, 300), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    cleaned = Image.open(io.BytesIO(clean_photo(io.BytesIO(out.getvalue())).read()))
    assert cleaned.size == (300, 400)
