"""Settings for the services: bounded PostgreSQL connections (bench/load.py) and Celery
redelivery after a worker dies (bench/faults.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SNIPPET = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps(settings.DATABASES['default']['OPTIONS'].get('pool')))"
)


def pool_for(**env: str) -> object:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_POOL_SIZE", "DATABASE_URL")
    }
    environment.update(DJANGO_SETTINGS_MODULE="purplevisits.settings", **env)
    output = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=environment, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr[-500:]
    return json.loads(output.stdout.strip().splitlines()[-1])


def test_a_pool_of_ten_by_default_on_postgresql() -> None:
    pool = pool_for(DATABASE_URL="postgres://u@127.0.0.1:5432/db")
    assert pool == {"min_size": 2, "max_size": 10, "timeout": 20}


def test_size_zero_turns_the_pool_off() -> None:
    assert pool_for(DATABASE_URL="postgres://u@127.0.0.1:5432/db", DATABASE_POOL_SIZE="0") is None


def test_a_bounded_pool_when_asked() -> None:
    pool = pool_for(DATABASE_URL="postgres://u@127.0.0.1:5432/db", DATABASE_POOL_SIZE="15")
    assert pool == {"min_size": 2, "max_size": 15, "timeout": 20}


def test_sqlite_ignores_the_pool() -> None:
    assert pool_for(DATABASE_URL="sqlite:///var/x.db", DATABASE_POOL_SIZE="15") is None


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_a_bad_size_is_refused(value: str) -> None:
    environment = {**os.environ, "DATABASE_POOL_SIZE": value}
    environment["DJANGO_SETTINGS_MODULE"] = "purplevisits.settings"
    output = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=environment, capture_output=True, text=True
    )
    assert output.returncode != 0
    assert "DATABASE_POOL_SIZE" in output.stderr


def test_a_dead_workers_task_is_delivered_again_within_minutes(settings) -> None:  # type: ignore[no-untyped-def]
    """kombu's default visibility timeout is an hour (bench/faults.py celery)."""
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert 60 <= timeout <= 900
    # Above the longest retry countdown, so a waiting retry is not delivered twice.
    assert timeout > 10 * 2**2


def test_kombu_accepts_the_installed_redis_client() -> None:
    """kombu's Redis transport refuses redis-py older than it supports (seen in the
    Celery drill: every .delay() failed with VersionMismatch)."""
    import redis
    from kombu.transport import redis as transport

    channel = transport.Channel.__new__(transport.Channel)  # no broker connection needed
    channel.global_keyprefix = ""
    assert channel._get_client() is redis.Redis
