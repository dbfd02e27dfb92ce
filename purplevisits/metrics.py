"""``/metrics``: what an operator watches, in Prometheus' text format.

Live calls, calls per relay, relay CPU, face checks (count and latency), pauses,
request latency and the Celery queue's length. Counts of calls come from the database
(two small indexed queries); the Celery queue from Redis (one LLEN). Request and
face-check latencies are measured in every web and relay process, kept in memory and
added to Redis every ``METRICS_FLUSH_SECONDS`` (one pipelined round trip), so whichever
web process answers ``/metrics`` reports the whole service. Without Redis (``make run``)
everything stays in the one process.

The endpoint answers only ``Authorization: Bearer <METRICS_TOKEN>``; without a token
set it does not exist (404).
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Upper bounds (seconds) of the latency histograms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST = "request"
FACE_CHECK = "face_check"
KEY_PREFIX = "pv:metrics"
RELAY_STATS_KEY = f"{KEY_PREFIX}:relay"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)  # not cumulative: one count per bucket
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
                break

    def fields(self) -> dict[str, float]:
        values: dict[str, float] = {f"b{i}": n for i, n in enumerate(self.buckets) if n}
        values["count"] = self.count
        values["sum"] = self.total
        return values


_lock = threading.Lock()
_pending: dict[str, _Histogram] = {}
_totals: dict[str, dict[str, float]] = {}  # without Redis: this process's figures
_last_flush = time.monotonic()


def observe(name: str, seconds: float) -> None:
    with _lock:
        histogram = _pending.get(name)
        if histogram is None:
            histogram = _pending[name] = _Histogram()
        histogram.observe(seconds)


def face_check_observed(total_ms: float) -> None:
    """One face check done in this relay process (calls/facecheck/checker.py)."""
    observe(FACE_CHECK, total_ms / 1000)


def _redis() -> Any:
    import redis

    return _client(settings.REDIS_URL, redis)


_clients: dict[str, Any] = {}


def _client(url: str, redis: Any) -> Any:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2)
    return client


def flush(*, force: bool = False) -> None:
    """Add this process's figures since the last flush to the shared totals."""
    global _last_flush
    now = time.monotonic()
    if not force and now - _last_flush < settings.METRICS_FLUSH_SECONDS:
        return
    with _lock:
        if not force and now - _last_flush < settings.METRICS_FLUSH_SECONDS:
            return
        _last_flush = now
        taken = {name: h.fields() for name, h in _pending.items() if h.count}
        _pending.clear()
    if not taken:
        return
    if not settings.REDIS_URL:
        with _lock:
            for name, fields in taken.items():
                total = _totals.setdefault(name, {})
                for field, value in fields.items():
                    total[field] = total.get(field, 0) + value
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for name, fields in taken.items():
            for field, value in fields.items():
                pipe.hincrbyfloat(f"{KEY_PREFIX}:h:{name}", field, value)
        pipe.execute()
    except Exception:  # noqa: BLE001 - metrics never break a request; the figures are lost
        import logging

        logging.getLogger(__name__).warning("metrics: flush to Redis failed", exc_info=True)


def _histogram_totals(name: str) -> dict[str, float]:
    if not settings.REDIS_URL:
        with _lock:
            return dict(_totals.get(name, {}))
    raw: Any = _redis().hgetall(f"{KEY_PREFIX}:h:{name}")
    return {key.decode(): float(value) for key, value in raw.items()}


class RequestLatencyMiddleware:
    """Times every request through the middleware and the view (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        try:
            return self.get_response(request)
        finally:
            observe(REQUEST, time.perf_counter() - started)
            flush()


def process_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default; Linux /proc)."""
    if pid is None:
        return time.process_time()
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def relay_stats_publish(*, relay_id: str, cpu_seconds: float) -> None:
    """A relay process's CPU so far (its own and its face-check workers'), then its
    face-check figures: called every few seconds by ``manage.py runrelay``."""
    if settings.REDIS_URL:
        payload = json.dumps({"cpu_seconds": round(cpu_seconds, 3), "at": time.time()})
        _redis().hset(RELAY_STATS_KEY, relay_id, payload)
    flush(force=True)


# --- the page -----------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Page:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        label_text = ",".join(f'{key}="{_escape(str(v))}"' for key, v in labels.items())
        number = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{{{label_text}}} {number}" if labels else f"{name} {number}")

    def histogram(self, name: str, help_text: str, totals: dict[str, float]) -> None:
        self.family(name, "histogram", help_text)
        running = 0.0
        for index, bound in enumerate(BUCKETS):
            running += totals.get(f"b{index}", 0)
            self.sample(f"{name}_bucket", int(running), le=repr(bound))
        count = int(totals.get("count", 0))
        self.sample(f"{name}_bucket", count, le="+Inf")
        self.sample(f"{name}_sum", float(totals.get("sum", 0.0)))
        self.sample(f"{name}_count", count)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _live_relays() -> Iterable[Any]:
    from calls.relay.registry import get_registry

    return get_registry().live()


def render() -> str:
    from calls.models import Call, CallEvent, CallEventKind, CallStatus

    page = _Page()
    active = {CallStatus.WAITING, CallStatus.LIVE, CallStatus.PAUSED}
    by_status: dict[str, int] = {str(status): 0 for status in active}
    by_relay: dict[str, int] = {}
    rows = Call.objects.filter(status__in=active).values_list("status", "relay_id")
    for status, relay_id in rows:
        by_status[status] += 1
        if relay_id:
            by_relay[relay_id] = by_relay.get(relay_id, 0) + 1
    page.family("purplevisits_calls", "gauge", "Calls not yet ended, by status.")
    for status in sorted(by_status):
        page.sample("purplevisits_calls", by_status[status], status=str(status))
    page.family("purplevisits_calls_live", "gauge", "Calls in progress (live or paused).")
    page.sample(
        "purplevisits_calls_live", by_status[CallStatus.LIVE] + by_status[CallStatus.PAUSED]
    )
    page.family("purplevisits_calls_paused", "gauge", "Calls paused now.")
    page.sample("purplevisits_calls_paused", by_status[CallStatus.PAUSED])
    pauses = CallEvent.objects.filter(
        kind=CallEventKind.PAUSED, created_at__gte=timezone.now() - timedelta(seconds=3600)
    ).count()
    page.family("purplevisits_call_pauses_last_hour", "gauge", "Pauses in the last hour.")
    page.sample("purplevisits_call_pauses_last_hour", pauses)

    relays = {info.relay_id: info for info in _live_relays()}
    page.family("purplevisits_relays_live", "gauge", "Relay processes announcing themselves.")
    page.sample("purplevisits_relays_live", len(relays))
    page.family("purplevisits_relay_calls", "gauge", "Calls not yet ended, by relay.")
    for relay_id in sorted(set(relays) | set(by_relay)):
        page.sample("purplevisits_relay_calls", by_relay.get(relay_id, 0), relay=relay_id)
    if settings.REDIS_URL:
        stats: Any = _redis().hgetall(RELAY_STATS_KEY)
        page.family(
            "purplevisits_relay_cpu_seconds_total",
            "counter",
            "CPU used by each live relay process and its face-check workers.",
        )
        for raw_id, raw in sorted(stats.items()):
            relay_id = raw_id.decode()
            if relay_id not in relays:
                _redis().hdel(RELAY_STATS_KEY, relay_id)  # a relay that has gone
                continue
            cpu = float(json.loads(raw)["cpu_seconds"])
            page.sample("purplevisits_relay_cpu_seconds_total", cpu, relay=relay_id)
        page.family("purplevisits_celery_queue_length", "gauge", "Tasks waiting for a worker.")
        page.sample(
            "purplevisits_celery_queue_length", int(_redis().llen("celery")), queue="celery"
        )

    face = _histogram_totals(FACE_CHECK)
    page.family("purplevisits_face_checks_total", "counter", "Face checks done in calls.")
    page.sample("purplevisits_face_checks_total", int(face.get("count", 0)))
    page.histogram("purplevisits_face_check_seconds", "Face check time, frame to decision.", face)
    page.histogram(
        "purplevisits_request_seconds",
        "HTTP request time through the middleware and the view.",
        _histogram_totals(REQUEST),
    )
    return page.text()


def _authorised(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("No metrics here.")
    if not _authorised(request):
        response = HttpResponse(
            gettext("A metrics token is needed.") + "\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    flush(force=True)
    return HttpResponse(render(), content_type=CONTENT_TYPE)
