"""Wrong passwords slow the guesser, not the officer (issue 12, finding 9), and the
proxy headers are trusted only when a proxy is declared (findings 9 and 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from identity import login_throttle
from tests import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ATTACKER = "203.0.113.9"
OFFICE = "198.51.100.7"


def sign_in(email: str, password: str, address: str, **headers: str):  # type: ignore[no-untyped-def]
    return Client().post(
        reverse("account_login"),
        {"login": email, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def accepted(response) -> bool:  # type: ignore[no-untyped-def]
    # Staff with an authenticator app go on to the code step once the password is right.
    return response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")


def refused_for_waiting(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 200 and "Too many failed sign-in attempts" in (
        response.content.decode()
    )


def test_wrong_passwords_from_elsewhere_do_not_lock_out_a_named_officer(people) -> None:  # type: ignore[no-untyped-def]
    email = people.officer_x.email
    for _ in range(8):
        assert not accepted(sign_in(email, "not-the-password", ATTACKER))
    # The old per-account limit (5 in 300 s) refused even the right password here.
    assert accepted(sign_in(email, factories.PASSWORD, OFFICE))


def test_guesses_from_one_address_wait_longer_each_time_and_are_told_when(people) -> None:  # type: ignore[no-untyped-def]
    email = people.officer_x.email
    with time_machine.travel(time.time(), tick=False) as traveller:
        for _ in range(login_throttle.FREE_ATTEMPTS + 1):
            assert not refused_for_waiting(sign_in(email, "wrong", ATTACKER))
        # The fourth guess opened a 30 s wait: even the right password waits.
        waiting = sign_in(email, factories.PASSWORD, ATTACKER)
        assert refused_for_waiting(waiting)
        assert "Try again in 30 seconds" in waiting.content.decode()
        traveller.shift(31)
        assert not refused_for_waiting(sign_in(email, "wrong", ATTACKER))  # opens 60 s
        traveller.shift(31)
        later = sign_in(email, factories.PASSWORD, ATTACKER)
        assert refused_for_waiting(later)
        assert "Try again in 29 seconds" in later.content.decode()
        traveller.shift(30)
        assert accepted(sign_in(email, factories.PASSWORD, ATTACKER))
        # A right password starts the count again.
        for _ in range(login_throttle.FREE_ATTEMPTS):
            assert not refused_for_waiting(sign_in(email, "wrong", ATTACKER))


def test_the_delay_grows_to_a_ceiling_not_a_lock() -> None:
    delays = [login_throttle.delay_after(n) for n in range(1, 12)]
    assert delays[: login_throttle.FREE_ATTEMPTS] == [0] * login_throttle.FREE_ATTEMPTS
    assert delays[3:7] == [30, 60, 120, 240]
    assert max(delays) == login_throttle.MAX_DELAY_SECONDS == 15 * 60
    assert login_throttle.TooManyAttempts(600).message.endswith("Try again in 10 minutes.")


def test_spraying_many_accounts_from_one_address_is_slowed(people) -> None:  # type: ignore[no-untyped-def]
    for number in range(login_throttle.ADDRESS_FAILURES_PER_MINUTE):
        sign_in(f"nobody{number}@example.test", "wrong", ATTACKER)
    assert refused_for_waiting(sign_in(people.officer_x.email, factories.PASSWORD, ATTACKER))
    assert accepted(sign_in(people.officer_x.email, factories.PASSWORD, OFFICE))


def test_a_forged_forwarded_for_does_not_escape_the_delay_without_a_trusted_proxy(  # type: ignore[no-untyped-def]
    people, settings
) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    email = people.officer_x.email
    for number in range(login_throttle.FREE_ATTEMPTS + 1):
        sign_in(email, "wrong", ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")
    assert refused_for_waiting(
        sign_in(email, factories.PASSWORD, ATTACKER, HTTP_X_FORWARDED_FOR="10.0.0.99")
    )


def test_behind_a_declared_proxy_each_client_has_its_own_count(people, settings) -> None:  # type: ignore[no-untyped-def]
    # Behind a proxy every request comes from the proxy's address: one shared bucket,
    # unless the proxy is declared and its X-Forwarded-For read.
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    email = people.officer_x.email
    proxy = "10.0.0.1"
    for _ in range(login_throttle.FREE_ATTEMPTS + 1):
        sign_in(email, "wrong", proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert refused_for_waiting(
        sign_in(email, factories.PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    )
    assert accepted(sign_in(email, factories.PASSWORD, proxy, HTTP_X_FORWARDED_FOR=OFFICE))


# --- settings ------------------------------------------------------------------------------
SNIPPET = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps([getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), "
    "settings.ALLAUTH_TRUSTED_PROXY_COUNT]))"
)


def proxy_settings(**env: str) -> list:
    environment = {k: v for k, v in os.environ.items() if k != "TRUSTED_PROXY_COUNT"}
    environment.update(
        DJANGO_SETTINGS_MODULE="purplevisits.settings",
        DEBUG="false",
        SECRET_KEY="kq3#v8Lz!pW2mT6yR9sB4nD7fH1jX5cG0aE-uY8iO3wQ2zV6xN",
        ALLOWED_HOSTS="visits.example.org",
        FACE_ENCRYPTION_KEY="Jk1TrUJ9cXv5o2sYH4mB7nQ8wE3rT6yU1iO0pA9sD2f=",
        SITE_URL="https://visits.example.org",
        **env,
    )
    output = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=environment, capture_output=True, text=True, cwd=ROOT
    )
    assert output.returncode == 0, output.stderr[-800:]
    return json.loads(output.stdout.strip().splitlines()[-1])


def test_forwarded_proto_is_trusted_only_when_a_proxy_is_declared() -> None:
    # The old production settings trusted X-Forwarded-Proto from any client.
    assert proxy_settings() == [None, 0]
    assert proxy_settings(TRUSTED_PROXY_COUNT="1") == [["HTTP_X_FORWARDED_PROTO", "https"], 1]


def test_forwarded_proto_from_a_client_does_not_make_a_request_secure(settings, rf) -> None:  # type: ignore[no-untyped-def]
    assert getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None
    request = rf.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()


def test_production_web_processes_do_not_name_their_server() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    for text in (dockerfile, compose):
        for line in text.splitlines():
            if "daphne" in line and "purplevisits.asgi:application" in line:
                assert "--no-server-name" in line, line
