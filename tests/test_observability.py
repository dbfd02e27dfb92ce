import json
import logging
import time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from purplevisits.observability import (
    JsonFormatter,
    RequestIdFilter,
    new_request_id,
    request_id_var,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id(client) -> None:  # type: ignore[no-untyped-def]
    first = client.get("/")["X-Request-ID"]
    second = client.get("/")["X-Request-ID"]
    assert len(first) == 32 and first != second
    assert client.get("/", HTTP_X_REQUEST_ID="proxy-id-12345")["X-Request-ID"] == "proxy-id-12345"
    # Something unsafe to put in a log line is replaced, not echoed.
    hostile = client.get("/", HTTP_X_REQUEST_ID="x\nFAKE LOG LINE")["X-Request-ID"]
    assert "\n" not in hostile and len(hostile) == 32


def test_json_log_lines_carry_the_request_id_and_extra_fields() -> None:
    token = request_id_var.set("req-abc-123")
    try:
        record = logging.LogRecord(
            "purplevisits.security", logging.INFO, __file__, 1, "login", None, None
        )
        record.event = "login"
        record.user_id = 7
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-abc-123"
    assert (line["level"], line["logger"], line["message"], line["event"], line["user_id"]) == (
        "INFO",
        "purplevisits.security",
        "login",
        "login",
        7,
    )


def test_new_request_id_rejects_overlong_values() -> None:
    assert new_request_id("a" * 65) != "a" * 65
    assert new_request_id("abcdefgh") == "abcdefgh"


def login(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    assert client.login(username=user.username, password=factories.PASSWORD)


def test_staff_session_ends_after_fifteen_idle_minutes(people) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    with time_machine.travel(time.time(), tick=False) as traveller:
        login(client, people.officer_x)
        assert client.get("/").status_code == 200
        traveller.shift(14 * 60)
        assert "Signed in as" in client.get("/").content.decode()
        traveller.shift(16 * 60)
        response = client.get("/hq/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert "_auth_user_id" not in client.session


def test_family_session_is_not_cut_by_idleness_but_has_an_absolute_limit(people, settings) -> None:  # type: ignore[no-untyped-def]
    # A longer cookie than the limit, so the middleware (not cookie expiry) is under test.
    settings.SESSION_COOKIE_AGE = 7 * 24 * 3600
    client = Client()
    with time_machine.travel(time.time(), tick=False) as traveller:
        login(client, people.family_a)
        traveller.shift(60 * 60)
        assert "Signed in as" in client.get("/").content.decode()
        traveller.shift(12 * 3600)
        assert client.get("/").status_code == 302
        assert "_auth_user_id" not in client.session


def test_login_rotates_the_session_key_and_logout_kills_it_on_the_server(people) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.get("/")
    client.session["probe"] = 1
    before = client.session.session_key
    login(client, people.family_a)
    after = client.cookies["sessionid"].value
    assert after != before
    client.post(reverse("account_logout"))
    # Replaying the old cookie does not sign anyone in.
    replay = Client()
    replay.cookies["sessionid"] = after
    assert "Signed in as" not in replay.get("/").content.decode()


def test_security_events_are_logged(client, people, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="purplevisits.security"):
        assert not client.login(username=people.family_a.username, password="wrong password")
        login(client, people.family_a)
        client.get(reverse("monitoring:national"))
    events = [record.event for record in caplog.records if record.name == "purplevisits.security"]
    assert events == ["login_failed", "login", "permission_denied"]
    failed = next(r for r in caplog.records if getattr(r, "event", "") == "login_failed")
    assert failed.identifier == people.family_a.username
    assert "wrong password" not in caplog.text
