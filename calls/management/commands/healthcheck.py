"""Container healthchecks: ``manage.py healthcheck web|relay|worker|beat``.

Exit status 0 when the process type answers, 1 (with the reason on stderr) otherwise.

- ``web``: GET ``http://127.0.0.1:$WEB_PORT/healthz`` with the ``Host`` of ``SITE_URL``
  (so it passes ``ALLOWED_HOSTS`` without naming loopback there; ``/healthz`` is exempt
  from the HTTPS redirect): the database, cache and channel layer answer.
- ``relay``: the relay named ``$RELAY_ID`` (``--relay-id``) announces itself in the
  registry (its event loop runs and reaches Redis).
- ``worker``: the Celery worker ``celery@<hostname>`` answers a ping.
- ``beat``: beat's scheduler wrote its heartbeat recently (purplevisits/beat.py).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

TIMEOUT_SECONDS = 10


class Command(BaseCommand):
    help = "Exit 0 when this container's process (web, relay, worker or beat) is healthy."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("process", choices=["web", "relay", "worker", "beat"])
        parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
        parser.add_argument("--relay-id", default=os.environ.get("RELAY_ID") or None)
        parser.add_argument("--worker", default=None, help="Celery node name to ping.")

    def handle(self, *args: object, **options: object) -> None:
        process = str(options["process"])
        check = getattr(self, f"_check_{process}")
        try:
            detail = check(options)
        except CommandError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is an unhealthy answer
            raise CommandError(f"{process}: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(f"{process}: ok ({detail})")

    def _check_web(self, options: dict[str, object]) -> str:
        port = int(options["port"])  # type: ignore[call-overload]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
        conn.request("GET", "/healthz", headers={"Host": settings.SITE_HOST})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise CommandError(f"web: /healthz answered {response.status}: {body[:200]!r}")
        if json.loads(body).get("status") != "ok":
            raise CommandError(f"web: /healthz said {body[:200]!r}")
        return f"port {port}"

    def _check_relay(self, options: dict[str, object]) -> str:
        from calls.relay.registry import get_registry

        relay_id = options["relay_id"]
        if not relay_id:
            raise CommandError("relay: set RELAY_ID (or --relay-id) to the relay's name")
        live = {info.relay_id for info in get_registry().live()}
        if relay_id in live:
            return str(relay_id)
        # `runrelay --processes N` names its relays <RELAY_ID>-0 … <RELAY_ID>-(N-1).
        prefix = f"{relay_id}-"
        children = sorted(r for r in live if r.startswith(prefix) and r[len(prefix) :].isdigit())
        if not children:
            raise CommandError(f"relay: neither {relay_id} nor its processes announce themselves")
        return f"{relay_id} ({len(children)} processes: {', '.join(children)})"

    def _check_worker(self, options: dict[str, object]) -> str:
        from purplevisits.celery import app

        node = str(options["worker"] or f"celery@{socket.gethostname()}")
        answers = app.control.ping(destination=[node], timeout=TIMEOUT_SECONDS / 2)
        if not any(node in answer for answer in answers):
            raise CommandError(f"worker: {node} did not answer a ping")
        return node

    def _check_beat(self, options: dict[str, object]) -> str:
        import redis

        from purplevisits.beat import HEARTBEAT_KEY, STALE_AFTER_SECONDS

        if not settings.REDIS_URL:
            raise CommandError("beat: needs REDIS_URL")
        raw: Any = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).get(HEARTBEAT_KEY)
        if raw is None:
            raise CommandError("beat: no heartbeat yet")
        age = time.time() - float(raw)
        if age > STALE_AFTER_SECONDS:
            raise CommandError(f"beat: last heartbeat {age:.0f} s ago")
        return f"heartbeat {age:.0f} s ago"
