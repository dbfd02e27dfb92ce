"""/metrics (issue 15): Prometheus text, behind a bearer token, cheap."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from calls.models import CallEvent, CallEventKind
from purplevisits import metrics
from tests import factories

TOKEN = "t" * 40


@pytest.fixture
def token(settings):  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = TOKEN
    settings.REDIS_URL = ""  # this process's figures (the Redis path runs in tests/production)
    metrics._pending.clear()
    metrics._totals.clear()
    return TOKEN


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_no_token_set_means_no_page(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_a_wrong_or_missing_token_is_refused(client: Client, token: str, header) -> None:  # type: ignore[no-untyped-def]
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(reverse("metrics"), **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "purplevisits_" not in response.content.decode()


@pytest.mark.django_db
def test_metrics_report_calls_pauses_face_checks_and_requests(client: Client, token: str) -> None:
    live = factories.CallFactory(status="live", relay_id="relay-a")
    factories.CallFactory(status="paused", relay_id="relay-a")
    factories.CallFactory(status="ended", relay_id="relay-b")
    CallEvent.objects.create(call=live, kind=CallEventKind.PAUSED)
    metrics.face_check_observed(40.0)
    metrics.face_check_observed(300.0)
    client.get("/healthz")  # one request timed by the middleware
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response.content.decode())
    assert found[("purplevisits_calls_live", ())] == 2
    assert found[("purplevisits_calls_paused", ())] == 1
    assert found[("purplevisits_calls", (("status", "waiting"),))] == 0
    assert found[("purplevisits_relay_calls", (("relay", "relay-a"),))] == 2
    assert ("purplevisits_relay_calls", (("relay", "relay-b"),)) not in found  # ended
    assert found[("purplevisits_call_pauses_last_hour", ())] == 1
    assert found[("purplevisits_face_checks_total", ())] == 2
    assert found[("purplevisits_face_check_seconds_bucket", (("le", "0.05"),))] == 1
    assert found[("purplevisits_face_check_seconds_bucket", (("le", "0.5"),))] == 2
    assert found[("purplevisits_face_check_seconds_sum", ())] == pytest.approx(0.34)
    assert found[("purplevisits_request_seconds_count", ())] >= 1


def test_histogram_buckets_are_cumulative_and_end_in_inf() -> None:
    histogram = metrics._Histogram()
    for seconds in (0.001, 0.2, 0.2, 50.0):
        histogram.observe(seconds)
    page = metrics._Page()
    page.histogram("x_seconds", "help", histogram.fields())
    found = samples(page.text())
    assert found[("x_seconds_bucket", (("le", "0.005"),))] == 1
    assert found[("x_seconds_bucket", (("le", "0.25"),))] == 3
    assert found[("x_seconds_bucket", (("le", "10.0"),))] == 3
    assert found[("x_seconds_bucket", (("le", "+Inf"),))] == 4
    assert found[("x_seconds_count", ())] == 4
