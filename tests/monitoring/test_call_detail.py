"""The officer's call page, its controls (forms and socket), refusals and drop alerts."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from calls import services as call_services
from calls.models import Call, CallConnection, CallRole, CallStatus
from calls.routing import websocket_urlpatterns
from monitoring.models import Alert, AlertKind
from tests import factories
from tests.calls.conftest import make_setup

PEOPLE = ["anonymous", "family_a", "officer_x", "visits_admin_x", "officer_y", "hq"]


def live_call(establishment, **kwargs) -> Call:  # type: ignore[no-untyped-def]
    now = timezone.now()
    return factories.CallFactory(
        booking__connection__prisoner__establishment=establishment,
        booking__starts_at=now - timedelta(minutes=2),
        booking__ends_at=now + timedelta(minutes=28),
        status=kwargs.pop("status", CallStatus.LIVE),
        started_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(minutes=29),
        **kwargs,
    )


def login(client, people, who):  # type: ignore[no-untyped-def]
    if who != "anonymous":
        client.force_login(getattr(people, who))


def detail_url(call: Call, code: str | None = None) -> str:
    code = code or call.booking.establishment.code
    return reverse("monitoring:call_detail", args=[code, call.pk])


def control_url(call: Call, action: str, code: str | None = None) -> str:
    code = code or call.booking.establishment.code
    return reverse("monitoring:call_control", args=[code, call.pk, action])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "expected", "controls"),
    [
        ("anonymous", 302, False),
        ("family_a", 403, False),
        ("officer_x", 200, True),
        ("visits_admin_x", 200, True),
        ("officer_y", 404, False),
        ("hq", 200, False),
    ],
)
def test_call_page_access(client, people, establishment_x, who, expected, controls) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    login(client, people, who)
    response = client.get(detail_url(call))
    assert response.status_code == expected
    body = response.content.decode()
    assert ('data-control="terminate"' in body) is controls
    assert ('id="video-family"' in body) is controls  # HQ: status only, no media
    if who == "hq":
        assert "Headquarters view: status only" in body
        assert "call-monitor.js" not in body
        assert "call-status.js" in body  # status kept current from the dashboard socket


@pytest.mark.django_db
def test_the_lead_visitor_of_the_call_cannot_open_the_staff_page(client, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(call.booking.lead_visitor.user)
    assert client.get(detail_url(call)).status_code == 403


@pytest.mark.django_db
def test_a_call_of_another_establishment_is_not_found_under_this_one(
    client, people, establishment_x, establishment_y
) -> None:  # type: ignore[no-untyped-def]
    call_y = live_call(establishment_y)
    client.force_login(people.officer_x)
    assert client.get(detail_url(call_y, code=establishment_x.code)).status_code == 404
    client.force_login(people.hq)
    assert client.get(detail_url(call_y, code=establishment_x.code)).status_code == 404


@pytest.mark.django_db
def test_call_page_shows_status_people_and_events(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    call_services.call_message(call_id=call.pk, actor=people.officer_x, text="<b>Hello</b>")
    client.force_login(people.officer_x)
    body = client.get(detail_url(call)).content.decode()
    assert call.booking.prisoner.prison_number in body
    assert call.booking.lead_visitor.legal_name in body
    assert 'data-status="live"' in body
    assert f'data-ws-path="/ws/calls/{call.pk}/"' in body
    assert "Staff message" in body
    assert "<b>Hello</b>" not in body  # escaped


@pytest.mark.django_db
def test_dashboard_tiles_link_to_the_call_page(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(people.officer_x)
    body = client.get(reverse("monitoring:dashboard", args=[establishment_x.code])).content.decode()
    assert f'href="{detail_url(call)}"' in body
    assert "Watch" in body


# --- controls as plain forms ----------------------------------------------------------

ACTIONS = {
    "pause": ({"reason": "Checking the room"}, CallStatus.PAUSED, AuditAction.CALL_PAUSE),
    "message": ({"text": "Please sit in view"}, CallStatus.LIVE, AuditAction.CALL_MESSAGE),
    "terminate": ({"reason": "Abusive language"}, CallStatus.ENDED, AuditAction.CALL_TERMINATE),
}


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("who", PEOPLE)
def test_control_authorisation_matrix(client, people, establishment_x, who, action) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    data, status_after, audit_action = ACTIONS[action]
    login(client, people, who)
    response = client.post(control_url(call, action), data)
    call.refresh_from_db()
    entries = AuditEntry.objects.filter(target_id=str(call.pk))
    if who in ("officer_x", "visits_admin_x"):
        assert response.status_code == 302
        assert response["Location"] == detail_url(call)
        assert call.status == status_after
        entry = entries.get(action=audit_action)
        assert entry.actor == getattr(people, who)
        assert entry.establishment == establishment_x
        if action == "terminate":
            assert entry.reason == "Abusive language"
        return
    assert call.status == CallStatus.LIVE  # nothing changed
    assert not entries.exclude(action=AuditAction.PERMISSION_DENIED).exists()
    if who == "anonymous":
        assert response.status_code == 302 and "/login" in response["Location"]
        assert not entries.exists()
        return
    assert response.status_code == 403
    denied = entries.get(action=AuditAction.PERMISSION_DENIED)
    assert denied.actor == getattr(people, who)
    assert denied.establishment == establishment_x  # the call's establishment sees it
    assert denied.detail["control"] == action
    body = response.content.decode()
    assert "This attempt has been recorded" in body
    if who == "hq":
        assert "Headquarters staff can see calls but not act" in body


@pytest.mark.django_db
def test_resume_by_an_officer_is_audited(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(people.officer_x)
    client.post(control_url(call, "pause"), {"reason": ""})
    response = client.post(control_url(call, "resume"), {"reason": "All clear"}, follow=True)
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert "Call resumed." in response.content.decode()
    assert AuditEntry.objects.filter(action=AuditAction.CALL_RESUME, reason="All clear").exists()
    assert AuditEntry.objects.filter(action=AuditAction.CALL_PAUSE).count() == 1


@pytest.mark.django_db
def test_a_control_that_does_not_apply_changes_nothing_and_says_so(
    client, people, establishment_x
) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(people.officer_x)
    response = client.post(control_url(call, "resume"), {}, follow=True)
    assert "Nothing changed: the call is live." in response.content.decode()
    assert not AuditEntry.objects.filter(action=AuditAction.CALL_RESUME).exists()


@pytest.mark.django_db
def test_an_officer_cannot_control_another_establishments_call_through_their_own_url(
    client, people, establishment_x, establishment_y, caplog
) -> None:  # type: ignore[no-untyped-def]
    call_y = live_call(establishment_y)
    client.force_login(people.officer_x)
    with caplog.at_level(logging.INFO, logger="purplevisits.security"):
        response = client.post(
            control_url(call_y, "terminate", code=establishment_x.code), {"reason": "x"}
        )
    assert response.status_code == 403
    call_y.refresh_from_db()
    assert call_y.status == CallStatus.LIVE
    denied = AuditEntry.objects.get(action=AuditAction.PERMISSION_DENIED)
    assert denied.establishment == establishment_y
    assert any(r.getMessage() == "call_control_refused" for r in caplog.records)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "data", "error", "code"),
    [
        ("terminate", {}, "Give a reason for ending the call.", "reason_required"),
        ("terminate", {"reason": "   "}, "Give a reason for ending the call.", "reason_required"),
        ("terminate", {"reason": "x" * 5000}, "The reason is too long.", "reason_too_long"),
        ("pause", {"reason": "x" * 5000}, "The reason is too long.", "reason_too_long"),
        ("message", {"text": ""}, "Write a message to send.", "text_required"),
        ("message", {"text": "y" * 501}, "at most 500 characters", "text_too_long"),
    ],
)
def test_bad_control_input_is_refused_shown_and_logged(
    client, people, establishment_x, caplog, action, data, error, code
) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(people.officer_x)
    with caplog.at_level(logging.INFO, logger="purplevisits.security"):
        response = client.post(control_url(call, action), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error-summary"' in body
    assert error in body
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    entries = AuditEntry.objects.filter(target_id=str(call.pk))
    assert list(entries.values_list("action", flat=True)) == [AuditAction.PERMISSION_DENIED]
    assert entries.get().detail["code"] == code
    assert any(r.getMessage() == "call_control_refused" for r in caplog.records)


@pytest.mark.django_db
def test_unknown_control_and_get_are_refused(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    client.force_login(people.officer_x)
    assert client.post(control_url(call, "explode"), {}).status_code == 404
    assert client.get(control_url(call, "pause")).status_code == 405
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE


# --- controls over the signalling socket -----------------------------------------------

signalling = URLRouter(websocket_urlpatterns)


async def _socket(user, call_id):  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    communicator = WebsocketCommunicator(signalling, f"/ws/calls/{call_id}/")
    communicator.scope["user"] = user
    communicator.scope["session"] = await sync_to_async(factories.socket_session)(user)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _next(communicator, kind):  # type: ignore[no-untyped-def]
    while True:
        message = await communicator.receive_json_from(timeout=3)
        if message["type"] == kind:
            return message


def _audit_actions(call_id):  # type: ignore[no-untyped-def]
    return list(
        AuditEntry.objects.filter(target_id=str(call_id))
        .order_by("pk")
        .values_list("action", "detail")
    )


@pytest.mark.django_db(transaction=True)
async def test_socket_control_from_a_family_is_refused_and_logged() -> None:
    from asgiref.sync import sync_to_async

    setup = await sync_to_async(make_setup)()
    call = await sync_to_async(call_services.call_open)(booking=setup.booking)
    family = await _socket(setup.family, call.pk)
    await _next(family, "state")
    await family.send_json_to({"type": "control", "action": "terminate", "reason": "ha"})
    error = await _next(family, "error")
    assert error["code"] == "forbidden"
    await family.disconnect()
    actions = await sync_to_async(_audit_actions)(call.pk)
    assert [(a, d["control"], d["channel"]) for a, d in actions] == [
        (AuditAction.PERMISSION_DENIED, "terminate", "socket")
    ]
    status = await sync_to_async(lambda: Call.objects.get(pk=call.pk).status)()
    assert status != CallStatus.ENDED


@pytest.mark.django_db(transaction=True)
async def test_socket_terminate_without_reason_is_refused_and_logged_then_works() -> None:
    from asgiref.sync import sync_to_async

    setup = await sync_to_async(make_setup)()
    call = await sync_to_async(call_services.call_open)(booking=setup.booking)
    monitor = await _socket(setup.officer, call.pk)
    await _next(monitor, "state")
    await monitor.send_json_to({"type": "control", "action": "terminate", "reason": ""})
    error = await _next(monitor, "error")
    assert error["code"] == "reason_required"
    await monitor.send_json_to({"type": "control", "action": "terminate", "reason": "Threats"})
    ended = await _next(monitor, "ended")
    assert ended["reason"] == "terminated"
    await monitor.disconnect()
    actions = [a for a, _ in await sync_to_async(_audit_actions)(call.pk)]
    assert actions == [AuditAction.PERMISSION_DENIED, AuditAction.CALL_TERMINATE]


# --- participant dropped ---------------------------------------------------------------


def _connect(call: Call, role: str) -> CallConnection:
    now = timezone.now()
    return CallConnection.objects.create(
        call=call, role=role, channel_name=f"test.{role}", connected_at=now, last_seen_at=now
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "role", "dropped", "alerts"),
    [
        (CallStatus.LIVE, CallRole.FAMILY, True, 1),
        (CallStatus.PAUSED, CallRole.PRISONER, True, 1),
        (CallStatus.LIVE, CallRole.FAMILY, False, 0),  # left on purpose
        (CallStatus.LIVE, CallRole.MONITOR, True, 0),  # staff closing their view
        (CallStatus.WAITING, CallRole.FAMILY, True, 0),  # not started yet
    ],
)
def test_a_dropped_participant_raises_an_alert(
    establishment_x, django_capture_on_commit_callbacks, settings, status, role, dropped, alerts
) -> None:  # type: ignore[no-untyped-def]
    settings.CALL_DROP_ALERT_GRACE_SECONDS = 0
    call = live_call(establishment_x, status=status)
    _connect(call, CallRole.PRISONER if role == CallRole.FAMILY else CallRole.FAMILY)
    connection = _connect(call, role)
    with django_capture_on_commit_callbacks(execute=True):
        call_services.call_leave(connection_id=connection.pk, dropped=dropped)
    found = Alert.objects.filter(call=call, kind=AlertKind.PARTICIPANT_DROPPED)
    assert found.count() == alerts
    if alerts:
        assert found.get().side == role
        assert found.get().establishment == establishment_x


@pytest.mark.django_db
def test_a_drop_alert_must_be_acknowledged(
    client, people, establishment_x, django_capture_on_commit_callbacks, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.CALL_DROP_ALERT_GRACE_SECONDS = 0
    call = live_call(establishment_x)
    connection = _connect(call, CallRole.FAMILY)
    with django_capture_on_commit_callbacks(execute=True):
        call_services.call_leave(connection_id=connection.pk, dropped=True)
    alert = Alert.objects.get()
    client.force_login(people.officer_x)
    dashboard = client.get(reverse("monitoring:dashboard", args=[establishment_x.code]))
    assert "Participant lost connection (family&#x27;s side)" in dashboard.content.decode()
    client.post(reverse("monitoring:alert_acknowledge", args=[establishment_x.code, alert.pk]))
    alert.refresh_from_db()
    assert alert.acknowledged_by == people.officer_x


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("who", "connects", "can_control"),
    [
        (None, False, None),
        ("family_a", False, None),
        ("officer_x", True, True),
        ("visits_admin_x", True, True),
        ("officer_y", False, None),
        ("hq", True, False),
    ],
)
async def test_dashboard_socket_matrix(
    client, people, establishment_x, who, connects, can_control
) -> None:  # type: ignore[no-untyped-def]
    from tests.monitoring.test_dashboard import open_socket

    user = getattr(people, who) if who else None
    communicator, connected, _ = await open_socket(client, user, establishment_x.code)
    assert connected is connects
    if connected:
        snapshot = await communicator.receive_json_from(timeout=3)
        assert snapshot["type"] == "snapshot"
        assert snapshot["can_control"] is can_control
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_drop_is_told_to_the_officer_on_the_call_page(settings) -> None:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    settings.CALL_DROP_ALERT_GRACE_SECONDS = 0
    setup = await sync_to_async(make_setup)()
    call = await sync_to_async(call_services.call_open)(booking=setup.booking)
    monitor = await _socket(setup.officer, call.pk)
    await _next(monitor, "state")
    family = await _socket(setup.family, call.pk)
    prisoner = await _socket(setup.terminal_user, call.pk)
    await _next(prisoner, "state")
    await family.disconnect()  # the family's socket drops
    alert = await _next(monitor, "alert")
    assert (alert["kind"], alert["side"]) == ("participant_dropped", "family")
    await prisoner.disconnect()
    await monitor.disconnect()
