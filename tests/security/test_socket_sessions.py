"""Sockets obey the session rules of HTTP, at connect and while open (issue 12, 2 and 3).

Through the whole ASGI stack (session cookie, AuthMiddlewareStack), as a browser.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse

from purplevisits import socket_sessions
from purplevisits.session_rules import LAST_ACTIVITY
from tests import factories
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db(transaction=True)

CEILING = 10.0  # seconds: a generous wait for an event on a loaded 2-core machine


@pytest.fixture
def world(transactional_db) -> World:  # type: ignore[no-untyped-def]
    return build_world()


def dashboard_path(world: World) -> str:
    return f"/ws/staff/{world.objects['x'].code}/dashboard/"  # type: ignore[attr-defined]


def call_path(world: World) -> str:
    return f"/ws/calls/{world.objects['call_a'].pk}/"  # type: ignore[attr-defined]


def signed_in(user: Any, *, two_factor: bool = True) -> Client:
    client = Client()
    if two_factor:
        client.force_login(user)  # a whole sign-in, TOTP step included (tests/conftest.py)
    else:
        factories.login_without_two_factor(client, user)
    return client


def cookie_of(client: Client) -> bytes:
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(path: str, cookie: bytes) -> tuple[WebsocketCommunicator, bool, Any]:
    from purplevisits.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", cookie)]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["scheme"] = "ws"
    connected, code = await communicator.connect(timeout=CEILING)
    return communicator, connected, code


async def opened(path: str, cookie: bytes) -> WebsocketCommunicator:
    """A socket accepted and past its first message (snapshot or state)."""
    communicator, connected, _ = await connect(path, cookie)
    assert connected
    first = await communicator.receive_output(timeout=CEILING)
    assert first["type"] == "websocket.send", first
    return communicator


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the server closes with (messages before it are skipped)."""
    deadline = time.monotonic() + CEILING
    while True:
        output = await communicator.receive_output(timeout=max(0.1, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


async def still_open(communicator: WebsocketCommunicator, seconds: float = 0.3) -> bool:
    """No close within ``seconds`` (pushes may arrive meanwhile)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=left):
            return True
        if (await communicator.receive_output(timeout=CEILING))["type"] == "websocket.close":
            return False
    return True


async def refusal(path: str, cookie: bytes) -> int | str:
    communicator, connected, code = await connect(path, cookie)
    if not connected:
        return int(code or 1000)
    try:
        return await close_code(communicator)
    finally:
        await communicator.disconnect()


# --- Finding 2: staff two-factor at connect ----------------------------------------------


async def test_staff_without_an_authenticator_app_are_refused_by_both_sockets(world) -> None:  # type: ignore[no-untyped-def]
    # The old consumers sent the full dashboard snapshot and accepted a monitor.
    officer = await sync_to_async(
        lambda: factories.StaffMembershipFactory(
            establishment=world.objects["x"], role="officer", mfa=False
        ).user
    )()
    cookie = cookie_of(await sync_to_async(signed_in)(officer))
    assert await refusal(dashboard_path(world), cookie) == 4401
    assert await refusal(call_path(world), cookie) == 4401


async def test_staff_whose_session_skipped_the_totp_step_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    client = await sync_to_async(signed_in)(world.users["officer_x"], two_factor=False)
    assert await refusal(dashboard_path(world), cookie_of(client)) == 4401
    assert await refusal(call_path(world), cookie_of(client)) == 4401


async def test_the_same_officer_with_a_good_session_is_accepted(world) -> None:  # type: ignore[no-untyped-def]
    client = await sync_to_async(signed_in)(world.users["officer_x"])
    for path in (dashboard_path(world), call_path(world)):
        communicator = await opened(path, cookie_of(client))
        assert await still_open(communicator)
        await communicator.disconnect()


# --- Finding 3: logout, expiry, password and deactivation reach open sockets ---------------


async def test_logout_closes_the_sessions_sockets_and_only_those(world) -> None:  # type: ignore[no-untyped-def]
    officer = world.users["officer_x"]
    client = await sync_to_async(signed_in)(officer)
    other = await sync_to_async(signed_in)(officer)  # the same officer on another screen
    dashboard = await opened(dashboard_path(world), cookie_of(client))
    monitor = await opened(call_path(world), cookie_of(client))
    elsewhere = await opened(dashboard_path(world), cookie_of(other))
    response = await sync_to_async(client.post)(reverse("account_logout"))
    assert response.status_code == 302
    # The old sockets kept working after logout.
    assert await close_code(dashboard) == 4401
    assert await close_code(monitor) == 4401
    assert await still_open(elsewhere)
    for communicator in (dashboard, monitor, elsewhere):
        await communicator.disconnect()


async def test_the_idle_limit_met_over_http_closes_the_sockets(world, settings) -> None:  # type: ignore[no-untyped-def]
    client = await sync_to_async(signed_in)(world.users["officer_x"])
    dashboard = await opened(dashboard_path(world), cookie_of(client))
    await sync_to_async(factories.make_idle)(client)
    response = await sync_to_async(client.get)(reverse("staff_home"))
    assert response["Location"].startswith("/accounts/login/")
    assert await close_code(dashboard) == 4401
    await dashboard.disconnect()


@pytest.mark.parametrize("change", ["password", "deactivated"])
async def test_a_password_change_or_deactivation_closes_every_socket_of_the_user(  # type: ignore[no-untyped-def]
    world, change
) -> None:
    officer = world.users["officer_x"]
    first = await opened(dashboard_path(world), cookie_of(await sync_to_async(signed_in)(officer)))
    second = await opened(call_path(world), cookie_of(await sync_to_async(signed_in)(officer)))
    family = await opened(
        call_path(world), cookie_of(await sync_to_async(signed_in)(world.users["family_a"]))
    )

    def change_user() -> None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(pk=officer.pk)
        if change == "password":
            user.set_password("a-brand-new-passphrase-for-work")
        else:
            user.is_active = False
        user.save()

    await sync_to_async(change_user)()
    assert await close_code(first) == 4401
    assert await close_code(second) == 4401
    # Nobody else's socket is touched.
    output = await family.receive_output(timeout=CEILING)  # the officer left: a state push
    assert output["type"] == "websocket.send"
    for communicator in (first, second, family):
        await communicator.disconnect()


async def test_an_open_socket_rechecks_its_session_and_closes_when_idle(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # No request, no logout: the officer walked away from the dashboard.
    monkeypatch.setattr(socket_sessions, "RECHECK_SECONDS", 0.05)
    client = await sync_to_async(signed_in)(world.users["officer_x"])
    dashboard = await opened(dashboard_path(world), cookie_of(client))
    monitor = await opened(call_path(world), cookie_of(client))
    assert await still_open(dashboard)  # rechecked several times, still fine
    await sync_to_async(factories.make_idle)(client)
    assert await close_code(dashboard) == 4401
    assert await close_code(monitor) == 4401
    await dashboard.disconnect()
    await monitor.disconnect()


def test_the_recheck_interval_is_at_most_a_minute() -> None:
    assert socket_sessions.RECHECK_SECONDS <= 60


# --- What counts as use: a person's act on the socket, never a heartbeat -------------------


async def test_dashboard_acts_count_as_activity_and_heartbeats_do_not(world, settings) -> None:  # type: ignore[no-untyped-def]
    client = await sync_to_async(signed_in)(world.users["officer_x"])
    key = client.cookies["sessionid"].value
    ten_minutes_ago = time.time() - 600  # inside the 15-minute limit

    def set_last(value: float) -> None:
        store = SessionStore(session_key=key)
        store[LAST_ACTIVITY] = value
        store.save()

    def last() -> float:
        return SessionStore(session_key=key)[LAST_ACTIVITY]

    await sync_to_async(set_last)(ten_minutes_ago)
    dashboard = await opened(dashboard_path(world), cookie_of(client))
    await dashboard.send_json_to({"type": "heartbeat"})
    assert (await dashboard.receive_json_from(timeout=CEILING))["type"] == "heartbeat"
    assert await sync_to_async(last)() == ten_minutes_ago
    await dashboard.send_json_to({"type": "refresh"})
    assert (await dashboard.receive_json_from(timeout=CEILING))["type"] == "snapshot"
    assert await sync_to_async(last)() > time.time() - 60
    await dashboard.disconnect()


async def test_a_monitors_control_counts_as_activity(world) -> None:  # type: ignore[no-untyped-def]
    client = await sync_to_async(signed_in)(world.users["officer_x"])
    key = client.cookies["sessionid"].value
    ten_minutes_ago = time.time() - 600

    def set_last() -> None:
        store = SessionStore(session_key=key)
        store[LAST_ACTIVITY] = ten_minutes_ago
        store.save()

    await sync_to_async(set_last)()
    monitor = await opened(call_path(world), cookie_of(client))
    await monitor.send_json_to({"type": "control", "action": "message", "text": "Hello"})
    # The reply (the message itself, or why it cannot be sent now) comes after the check.
    while (await monitor.receive_json_from(timeout=CEILING))["type"] not in ("message", "error"):
        pass
    stored = await sync_to_async(lambda: SessionStore(session_key=key)[LAST_ACTIVITY])()
    assert stored > time.time() - 60
    await monitor.disconnect()
