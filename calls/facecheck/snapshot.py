"""Evidence for staff: the frame cropped around the unapproved face, as JPEG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from calls.facecheck.analysis import Box

# Context kept around the face on each side, as a fraction of the face's size.
MARGIN = 0.6
JPEG_QUALITY = 85


def snapshot_jpeg(image: np.ndarray, box: Box, *, margin: float = MARGIN) -> bytes:
    """Crop ``image`` (H x W x 3 RGB) around ``box`` (top, right, bottom, left) with margin.

    A box partly or wholly outside the image is clipped; if nothing of it is left the
    whole frame is the evidence.
    """
    height, width = image.shape[:2]
    top, right, bottom, left = box
    pad_x = round(max(0, right - left) * margin)
    pad_y = round(max(0, bottom - top) * margin)
    x0, x1 = max(0, left - pad_x), min(width, right + pad_x)
    y0, y1 = max(0, top - pad_y), min(height, bottom + pad_y)
    crop = image[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else image
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
