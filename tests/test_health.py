import pytest
from django.db.utils import OperationalError

from purplevisits import health

pytestmark = pytest.mark.django_db


def test_healthy(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
    }
    assert "no-cache" in response["Cache-Control"]


def test_database_down_gives_503(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == {"status": "error", "error": "OperationalError"}
    assert body["checks"]["cache"]["status"] == "ok"


def test_cache_that_loses_writes_gives_503(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: None)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["status"] == "error"


def test_channel_layer_down_gives_503(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(health, "get_channel_layer", lambda: None)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"]["error"] == "RuntimeError"


def test_public_body_has_a_status_per_part_and_no_timings(client) -> None:  # type: ignore[no-untyped-def]
    # Issue 12 finding 11: the body published each check's milliseconds.
    body = client.get("/healthz").json()
    assert body["checks"] == {
        "database": {"status": "ok"},
        "cache": {"status": "ok"},
        "channel_layer": {"status": "ok"},
    }


def test_only_get(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/healthz").status_code == 405


def test_failure_details_stay_out_of_the_public_body(client, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    def broken() -> None:
        raise OperationalError('connection to server at "10.1.2.3", port 5432 failed')

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/healthz")
    assert "10.1.2.3" not in response.content.decode()
    assert "10.1.2.3" in caplog.text


def test_database_outage_is_a_503_page_not_a_500(rf) -> None:  # type: ignore[no-untyped-def]
    from purplevisits.errors import server_error

    try:
        raise OperationalError("the database system is starting up")
    except OperationalError:
        response = server_error(rf.get("/"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "temporarily unavailable" in response.content.decode()
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(rf.get("/")).status_code == 500
