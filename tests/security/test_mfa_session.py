"""Two-factor is a property of the session, on every way in (issue 12, findings 1 and 9)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse

from purplevisits.session_rules import (
    IS_STAFF,
    LAST_ACTIVITY,
    SESSION_STARTED,
    Problem,
    mark_mfa_passed,
    session_problem,
)
from tests import factories

pytestmark = pytest.mark.django_db


def signed_out(client: Client) -> bool:
    return "_auth_user_id" not in client.session


def next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query).get("next", [""])[0]


def totp_user(**kwargs):  # type: ignore[no-untyped-def]
    """A superuser with an authenticator app whose secret the test knows."""
    user = factories.UserFactory(**kwargs)
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


# --- Finding 1: Django admin's own sign-in ------------------------------------------------


def test_admin_login_form_signs_nobody_in_and_sends_to_the_sites_sign_in() -> None:
    # On the old code this POST signed the superuser in (302 to /admin/), no TOTP asked.
    user, _ = totp_user(is_superuser=True, is_staff=True)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": factories.PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert next_of(response["Location"]) == "/admin/"
    assert signed_out(client)
    assert client.get("/admin/").status_code == 302  # still nobody


def test_admin_sends_the_signed_out_to_the_sites_sign_in_keeping_next() -> None:
    client = Client()
    first = client.get("/admin/establishments/")
    assert first["Location"].startswith("/admin/login/")
    second = client.get(first["Location"])
    assert second["Location"].startswith("/accounts/login/")
    assert next_of(second["Location"]) == "/admin/establishments/"


def test_admin_login_keeps_only_a_next_on_this_site() -> None:
    response = Client().get("/admin/login/", {"next": "https://evil.example/admin/"})
    assert next_of(response["Location"]) == "/admin/"


def test_many_wrong_admin_passwords_are_not_checked_at_all() -> None:
    # The old admin form had no rate limit: 15 wrong, then the right one, accepted.
    user, _ = totp_user(is_superuser=True, is_staff=True)
    client = Client()
    for _ in range(15):
        client.post("/admin/login/", {"username": user.username, "password": "wrong"})
    client.post("/admin/login/", {"username": user.username, "password": factories.PASSWORD})
    assert signed_out(client)


# --- Finding 1: a session passes two-factor only by doing the step ------------------------


@pytest.mark.parametrize("kind", ["superuser", "member", "django_staff"])
def test_staff_with_totp_whose_session_skipped_the_step_are_signed_out(  # type: ignore[no-untyped-def]
    kind, establishment_x
) -> None:
    if kind == "member":
        user = factories.StaffMembershipFactory(establishment=establishment_x).user
    else:
        user = factories.UserFactory(is_superuser=kind == "superuser", is_staff=True)
        factories.mfa_enabled(user)
    client = Client()
    factories.login_without_two_factor(client, user)
    path = reverse("admin:index") if kind != "member" else reverse("staff_home")
    response = client.get(path)
    # The old middleware only asked whether an authenticator exists: 200.
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert next_of(response["Location"]) == path
    assert signed_out(client)


def test_the_sign_in_with_the_totp_code_passes_two_factor() -> None:
    user, secret = totp_user(is_superuser=True, is_staff=True)
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": factories.PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    assert signed_out(client)  # the password alone signs nobody in
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert response.status_code == 302
    assert not signed_out(client)
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_recovery_code_passes_two_factor_too() -> None:
    user, _ = totp_user(is_superuser=True, is_staff=True)
    code = RecoveryCodes.activate(user).get_unused_codes()[0]
    client = Client()
    client.post(reverse("account_login"), {"login": user.email, "password": factories.PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert client.get(reverse("admin:index")).status_code == 200


# allauth sends authenticator_added after commit: a real transaction, as in production.
@pytest.mark.django_db(transaction=True)
def test_setting_up_the_authenticator_in_this_session_counts_as_passing(establishment_x) -> None:  # type: ignore[no-untyped-def]
    user = factories.StaffMembershipFactory(establishment=establishment_x, mfa=False).user
    client = Client()
    # A real password sign-in (no TOTP yet, so no code step) then the set-up page.
    client.post(reverse("account_login"), {"login": user.email, "password": factories.PASSWORD})
    assert client.get(reverse("staff_home"))["Location"] == reverse("mfa_activate_totp")
    page = client.get(reverse("mfa_activate_totp"))
    if page.status_code == 302:  # allauth asks to confirm the password first
        assert page["Location"].startswith(reverse("account_reauthenticate"))
        client.post(page["Location"], {"password": factories.PASSWORD})
        page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post(reverse("mfa_activate_totp"), {"code": current_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    # Not signed out, not sent round again: the set-up proved the authenticator.
    assert client.get(reverse("staff_home")).status_code == 200


def test_families_and_terminals_are_not_asked_for_two_factor(people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    factories.login_without_two_factor(client, people.family_a)
    assert client.get(reverse("me")).status_code == 200
    terminal = factories.TerminalFactory(
        establishment=establishment_x, user=factories.UserFactory()
    )
    factories.login_without_two_factor(client, terminal.user)
    assert client.get(reverse("calls:terminal")).status_code == 200


def test_another_users_mark_does_not_count(people) -> None:  # type: ignore[no-untyped-def]
    session = SessionStore()
    mark_mfa_passed(session, people.officer_y)
    now = time.time()
    session.update({SESSION_STARTED: now, LAST_ACTIVITY: now, IS_STAFF: True})
    assert session_problem(people.officer_x, session, now=now) == Problem.MFA_NOT_PASSED
    mark_mfa_passed(session, people.officer_x)
    assert session_problem(people.officer_x, session, now=now) == Problem.NONE


def test_the_one_predicate_in_order(people, settings) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    session = SessionStore()
    session.update({SESSION_STARTED: now, LAST_ACTIVITY: now, IS_STAFF: True})
    assert session_problem(people.officer_x, session, now=now) == Problem.MFA_NOT_PASSED
    mark_mfa_passed(session, people.officer_x)
    assert session_problem(people.officer_x, session, now=now) == Problem.NONE
    idle = now + settings.STAFF_IDLE_SECONDS + 1
    assert session_problem(people.officer_x, session, now=idle) == Problem.IDLE
    # Families: no idle limit, but the absolute one.
    family = {SESSION_STARTED: now, LAST_ACTIVITY: now}
    assert session_problem(people.family_a, family, now=idle) == Problem.NONE
    late = now + settings.SESSION_ABSOLUTE_SECONDS + 1
    assert session_problem(people.family_a, family, now=late) == Problem.ABSOLUTE
    no_totp = factories.StaffMembershipFactory(mfa=False).user
    assert session_problem(no_totp, {SESSION_STARTED: now}, now=now) == Problem.MFA_MISSING
