import numpy as np
import pytest
from cryptography.fernet import Fernet

from identity import crypto
from tests.test_settings import run_manage


def test_encoding_round_trip_is_encrypted() -> None:
    encoding = np.random.default_rng(1).normal(size=128)
    token = crypto.encrypt_encoding(encoding)
    assert encoding.tobytes() not in token
    assert np.array_equal(crypto.decrypt_encoding(token), encoding)


def test_wrong_key_cannot_decrypt(settings) -> None:  # type: ignore[no-untyped-def]
    token = crypto.encrypt_encoding(np.zeros(128))
    settings.FACE_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(crypto.EncodingDecryptError):
        crypto.decrypt_encoding(token)


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        crypto.encrypt_encoding(np.zeros(5))


def test_production_start_up_fails_without_face_key_naming_it() -> None:
    result = run_manage(
        "check",
        DEBUG="false",
        SECRET_KEY="kq3#v8Lz!pW2mT6yR9sB4nD7fH1jX5cG0aE-uY8iO3wQ2zV6xN",
        ALLOWED_HOSTS="visits.example.org",
        SITE_URL="https://visits.example.org",
    )
    assert result.returncode != 0
    assert "FACE_ENCRYPTION_KEY" in result.stderr


def test_bad_face_key_fails_naming_it() -> None:
    result = run_manage("check", FACE_ENCRYPTION_KEY="not-a-key")
    assert result.returncode != 0
    assert "FACE_ENCRYPTION_KEY is not a Fernet key" in result.stderr
