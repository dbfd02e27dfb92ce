"""Fixtures for the whole suite: the named people of the permission tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import cache

from establishments.models import Establishment, StaffRole
from tests import factories


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    # The cache may be a shared Redis: start every test from an empty one.
    cache.clear()


@pytest.fixture(autouse=True)
def _no_delayed_task_outlives_its_test() -> Iterator[None]:
    """purplevisits.later runs delayed tasks on timers under eager Celery: cancel what is
    left when a test ends, or it fires into the next test (or a closed database)."""
    yield
    from purplevisits.later import cancel_pending

    cancel_pending()


@pytest.fixture(autouse=True)
def _celery_join_allowed() -> None:
    """Celery keeps "inside a task, joins would block" in one process-wide flag.

    Eager tasks run from several threads at once (async consumers hand work to
    sync_to_async threads) can interleave its save/restore and leave it set, and a
    later test's ``EagerResult.get()`` then raises "Never call result.get() within a
    task!" (seen once in CI on PostgreSQL). Start every test with it cleared.
    """
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture
def establishment_x(db) -> Establishment:  # type: ignore[no-untyped-def]
    return factories.EstablishmentFactory(name="HMP Xanadu", code="xanadu")


@pytest.fixture
def establishment_y(db) -> Establishment:  # type: ignore[no-untyped-def]
    return factories.EstablishmentFactory(name="HMP Yardley", code="yardley")


@dataclass
class People:
    """The named users of permission tests (CONVENTIONS.md #11)."""

    family_a: object
    family_b: object
    officer_x: object
    visits_admin_x: object
    officer_y: object
    visits_admin_y: object
    hq: object


@pytest.fixture
def people(establishment_x: Establishment, establishment_y: Establishment) -> People:
    def staff(email: str, establishment: Establishment | None, role: str) -> object:
        membership = factories.StaffMembershipFactory(
            user=factories.UserFactory(email=email), establishment=establishment, role=role
        )
        return membership.user

    return People(
        family_a=factories.UserFactory(email="family.a@example.test"),
        family_b=factories.UserFactory(email="family.b@example.test"),
        officer_x=staff("officer.x@example.test", establishment_x, StaffRole.OFFICER),
        visits_admin_x=staff("visits.x@example.test", establishment_x, StaffRole.VISITS_ADMIN),
        officer_y=staff("officer.y@example.test", establishment_y, StaffRole.OFFICER),
        visits_admin_y=staff("visits.y@example.test", establishment_y, StaffRole.VISITS_ADMIN),
        hq=staff("hq@example.test", None, StaffRole.HQ),
    )


@pytest.fixture(scope="session", autouse=True)
def _end_stray_database_sessions(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Let the test database be dropped at the end of the run.

    Async consumers and the forked browser-test server open connections in other
    threads and processes; on PostgreSQL any still open would block DROP DATABASE.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def admin_user(db, django_user_model, django_username_field):  # type: ignore[no-untyped-def]
    """pytest-django's superuser, with the two-factor set-up every staff account needs."""
    user = django_user_model._default_manager.create_superuser(
        **{django_username_field: "admin", "email": "admin@example.test", "password": "password"}
    )
    return factories.mfa_enabled(user)


@pytest.fixture(autouse=True)
def _test_client_login_passes_two_factor(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The test client's login() and force_login() are a whole sign-in, TOTP step
    included: staff sessions count as two-factor passed only after that step
    (purplevisits/session_rules.py). ``factories.login_without_two_factor`` signs in
    without it."""
    from django.test.client import ClientMixin

    from purplevisits.session_rules import mark_mfa_passed

    original = ClientMixin._login

    def _login(self, user, backend=None):  # type: ignore[no-untyped-def]
        original(self, user, backend)
        if getattr(self, "_pv_skip_two_factor", False):
            return
        session = self.session
        mark_mfa_passed(session, user)
        session.save()

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> None:
    """Each test gets its own channel-layer instance.

    channels_redis keeps locks and receive state per instance; a test that times out on a
    loaded machine while a receive holds a lock leaves it bound to that test's (closed)
    event loop, and every later test on the same instance then fails with "is bound to a
    different event loop" — one slow test became a cascade (seen under stress-ng).
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
