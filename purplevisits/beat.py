"""Celery beat's scheduler with a heartbeat, for ``manage.py healthcheck beat``.

``celery beat -S purplevisits.beat:HeartbeatScheduler``: every tick (at most
``HEARTBEAT_SECONDS`` apart) writes the time to Redis; the healthcheck reads it back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "pv:beat:alive"
HEARTBEAT_SECONDS = 15.0
# healthcheck beat: unhealthy once the heartbeat is older than this.
STALE_AFTER_SECONDS = 4 * HEARTBEAT_SECONDS


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = super().tick(*args, **kwargs)
        if settings.REDIS_URL:
            try:
                import redis

                client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
                client.set(HEARTBEAT_KEY, repr(time.time()), ex=int(STALE_AFTER_SECONDS * 4))
                client.close()
            except Exception:  # noqa: BLE001 - a missed heartbeat shows in the healthcheck
                logger.warning("beat: heartbeat not written", exc_info=True)
        return min(interval, HEARTBEAT_SECONDS)
