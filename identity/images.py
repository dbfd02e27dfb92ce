"""Checking and re-encoding uploaded photos (photo ID, selfie, dependant photo).

Nothing the visitor sent is stored as sent: a photo is accepted only if its content is
a JPEG or PNG within the size limits, and what is stored is a fresh JPEG drawn from the
decoded pixels, which drops metadata (location, camera) and anything hidden in or
around the image data (polyglot files).
"""

from __future__ import annotations

import io
import re
import warnings
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageFile, ImageOps

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Markup or code has no business inside a photo: refuse the file rather than hope the
# re-encoding removes it (it would, but the sender is told clearly).
_ACTIVE_CONTENT = re.compile(rb"<\s*(script|html|svg|iframe|body|\?php)|javascript:", re.I)
# Longest side kept after re-encoding: plenty for staff to read a passport (a data page
# filling the frame is stored at about 16 px/mm) and more than face matching uses
# (identity.faces detects at 1024 px). Phone photos of 12-24 MP are at least twice
# this, so a JPEG is decoded at half scale or less (see _decode_for_storage).
STORED_MAX_SIDE = 2000

# Pillow refuses (DecompressionBombError) anything above twice this; we refuse anything
# above it ourselves, from the header, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = settings.IDENTITY_UPLOAD_MAX_PIXELS


class ImageRejected(Exception):
    """An upload that is not an acceptable photo; ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def _stored_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, STORED_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode_for_storage(image: Image.Image, *, width: int, height: int) -> Image.Image:
    """Decode only as many pixels as are stored, then turn the picture upright.

    A phone photo (12-24 MP) is stored at most STORED_MAX_SIDE a side. A JPEG is decoded
    at 1/2, 1/4 or 1/8 scale straight from its DCT coefficients (``draft``) when that
    still covers the stored size; what remains is reduced by whole factors (box
    average, cheap) before the final Lanczos step. Turning it upright after shrinking
    moves a quarter of the pixels at most. A PNG has no reduced decode: the pixel limit,
    checked from the header, bounds its cost instead. Measured figures: docs/security.md.
    """
    target = _stored_size(width, height)
    if image.format == "JPEG" and target != (width, height):
        image.draft(None, target)
    image.load()
    if image.mode in ("P", "PA", "1"):  # resized by nearest neighbour otherwise
        image = image.convert("RGBA" if image.mode != "1" else "L")
    if image.size != target:
        image.thumbnail(target, Image.Resampling.LANCZOS, reducing_gap=1.0)
    ImageOps.exif_transpose(image, in_place=True)
    return image


def clean_photo(upload: IO[bytes], *, size: int | None = None) -> ContentFile:
    """Return a re-encoded JPEG of ``upload`` or raise ImageRejected."""
    max_bytes: int = settings.IDENTITY_UPLOAD_MAX_BYTES
    max_pixels: int = settings.IDENTITY_UPLOAD_MAX_PIXELS
    min_side: int = settings.IDENTITY_UPLOAD_MIN_SIDE
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    upload.seek(0)
    if size == 0:
        raise ImageRejected("empty", _("The file is empty. Choose a photo."))
    if size > max_bytes:
        raise ImageRejected(
            "too_large",
            _("The file is larger than %(megabytes)s. Choose a smaller photo.")
            % {"megabytes": _megabytes(max_bytes)},
        )
    data = upload.read(max_bytes + 1)
    if data.startswith(JPEG_MAGIC):
        expected = "JPEG"
    elif data.startswith(PNG_MAGIC):
        expected = "PNG"
    else:
        raise ImageRejected(
            "not_an_image", _("The file is not a photo. Upload a JPEG or PNG picture.")
        )
    if _ACTIVE_CONTENT.search(data):
        raise ImageRejected(
            "active_content",
            _("The file contains something other than a picture. Take a new photo and upload it."),
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[expected])
            width, height = image.size  # from the header: no pixels decoded yet
            if width * height > max_pixels:
                raise ImageRejected(
                    "too_many_pixels",
                    _(
                        "The picture is too big (%(width)s×%(height)s pixels). Use a photo of at "
                        "most %(value)s megapixels."
                    )
                    % {"width": width, "height": height, "value": max_pixels // 1_000_000},
                )
            if min(width, height) < min_side:
                raise ImageRejected(
                    "too_small",
                    _(
                        "The picture is too small (%(width)s×%(height)s pixels). Use a photo at "
                        "least %(min_side)s pixels wide and high."
                    )
                    % {"width": width, "height": height, "min_side": min_side},
                )
            # face_recognition sets this to True when imported; an incomplete upload
            # must fail here instead of being padded with grey.
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            image = _decode_for_storage(image, width=width, height=height)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            "too_many_pixels",
            _("The picture is too big. Use a photo of at most %(value)s megapixels.")
            % {"value": max_pixels // 1_000_000},
        ) from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError):
        raise ImageRejected(
            "damaged", _("The photo could not be read: it may be damaged or incomplete. Try again.")
        ) from None

    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, optimize=True)
    return ContentFile(out.getvalue(), name="photo.jpg")
