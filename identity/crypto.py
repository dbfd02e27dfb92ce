"""Encryption of face encodings at rest (Fernet, key from FACE_ENCRYPTION_KEY), and of
the pre-call frames while they wait for their face check.

An encoding is 128 float64 values; it is serialised as raw little-endian bytes and
encrypted. Decrypted encodings exist only in memory.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENCODING_LENGTH = 128
_DTYPE = np.dtype("<f8")


class EncodingDecryptError(Exception):
    """Stored ciphertext that this key cannot read (wrong key or damaged data)."""


@cache
def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode() if isinstance(key, str) else key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FACE_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes); "
            "make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from None


def fernet() -> Fernet:
    return _fernet(settings.FACE_ENCRYPTION_KEY)


def encrypt_encoding(encoding: np.ndarray) -> bytes:
    array = np.asarray(encoding, dtype=_DTYPE)
    if array.shape != (ENCODING_LENGTH,):
        raise ValueError(f"A face encoding has {ENCODING_LENGTH} values, not {array.shape}.")
    return fernet().encrypt(array.tobytes())


def decrypt_encoding(token: bytes) -> np.ndarray:
    try:
        raw = fernet().decrypt(bytes(token))
    except InvalidToken:
        raise EncodingDecryptError("The face encoding cannot be decrypted with this key.") from None
    return np.frombuffer(raw, dtype=_DTYPE).copy()


def encrypt_bytes(data: bytes) -> bytes:
    """Encrypt a private file's content with the same key (pre-call frames waiting for
    their face check: identity.services.precall_frames_submit)."""
    return fernet().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    try:
        return fernet().decrypt(bytes(token))
    except InvalidToken:
        raise EncodingDecryptError("The file cannot be decrypted with this key.") from None
