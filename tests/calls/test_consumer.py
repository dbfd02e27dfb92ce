"""The signalling protocol and its authorisation, through channels' WebsocketCommunicator."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from calls import services
from calls.models import Call, CallStatus
from calls.routing import websocket_urlpatterns
from tests import factories
from tests.calls.conftest import make_setup

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)

FINGERPRINT = ":".join(["AB", "CD", "EF", "01", "23", "45", "67", "89"] * 4)
# Enough of a browser's offer for the consumer's checks (the relay is not involved).
SENDRECV_OFFER = """v=0\r
o=- 1 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
c=IN IP4 0.0.0.0\r
a=mid:0\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 {fingerprint}\r
a=setup:actpass\r
a={direction}\r
a=rtcp-mux\r
a=rtpmap:111 opus/48000/2\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
c=IN IP4 0.0.0.0\r
a=mid:1\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 {fingerprint}\r
a=setup:actpass\r
a={direction}\r
a=rtcp-mux\r
a=rtpmap:96 VP8/90000\r
"""


async def open_socket(user, call_id) -> tuple[WebsocketCommunicator, bool]:  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(application, f"/ws/calls/{call_id}/")
    if user is not None:
        communicator.scope["user"] = user
        if user.is_authenticated:  # the session the AuthMiddlewareStack would give
            communicator.scope["session"] = await sync_to_async(factories.socket_session)(user)
    connected, _ = await communicator.connect()
    return communicator, connected


async def closed_with(communicator: WebsocketCommunicator) -> int:
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def next_of(communicator: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


@pytest.fixture
def opened(tsetup):  # type: ignore[no-untyped-def]
    call = services.call_open(booking=tsetup.booking)
    return tsetup, call


async def test_family_gets_state_on_connect(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, connected = await open_socket(setup.family, call.pk)
    assert connected
    state = await family.receive_json_from(timeout=3)
    assert state["type"] == "state"
    assert state["status"] == "waiting"
    assert state["pause_reason"] is None
    assert {"role": "family", "connected": True, "muted": False, "label": "Family"} in state[
        "participants"
    ]
    assert {"role": "prisoner", "connected": False, "muted": False, "label": "Prison laptop"} in (
        state["participants"]
    )
    assert state["status_label"] == "Waiting to start"
    assert "server_time" in state
    await family.disconnect()


async def test_the_call_goes_live_when_the_prisoner_joins(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    await next_of(family, "state")
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    state = await next_of(prisoner, "state")
    assert state["status"] == "live"
    assert state["ends_at"]
    live = await next_of(family, "state")
    while live["status"] != "live":
        live = await next_of(family, "state")
    assert all(p["connected"] for p in live["participants"])
    await family.disconnect()
    await prisoner.disconnect()


@pytest.mark.parametrize(
    ("who", "code"),
    [("anonymous", 4401), ("stranger", 4403), ("other_officer", 4403), ("other_terminal", 4403)],
)
async def test_refusals_close_with_the_contract_codes(opened, who, code) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    from tests import factories

    if who == "anonymous":
        from django.contrib.auth.models import AnonymousUser

        user = AnonymousUser()
    elif who == "other_terminal":
        user = await sync_to_async(
            lambda: (
                factories.TerminalFactory(
                    establishment=setup.booking.establishment, user=factories.UserFactory()
                ).user
            )
        )()
    else:
        user = getattr(setup, who)
    communicator, connected = await open_socket(user, call.pk)
    assert await closed_with(communicator) == code
    assert not await sync_to_async(lambda: Call.objects.get(pk=call.pk).connections.exists())()


async def test_no_such_call_is_4404(tsetup) -> None:  # type: ignore[no-untyped-def]
    import uuid

    communicator, _ = await open_socket(tsetup.family, uuid.uuid4())
    assert await closed_with(communicator) == 4404


async def test_outside_the_window_is_4409(transactional_db) -> None:  # type: ignore[no-untyped-def]
    early = await sync_to_async(make_setup)(started_minutes_ago=-20)
    call = await sync_to_async(Call.objects.create)(booking=early.booking)
    communicator, _ = await open_socket(early.family, call.pk)
    assert await closed_with(communicator) == 4409


async def test_an_ended_call_says_ended_then_4410(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    await sync_to_async(services.call_end)(call_id=call.pk, reason="terminated")
    communicator, _ = await open_socket(setup.family, call.pk)
    ended = await communicator.receive_json_from(timeout=3)
    assert ended == {"type": "ended", "reason": "terminated"}
    assert await closed_with(communicator) == 4410


async def test_a_call_past_its_slot_ends_on_connect(transactional_db) -> None:  # type: ignore[no-untyped-def]
    late = await sync_to_async(make_setup)(started_minutes_ago=40)
    call = await sync_to_async(Call.objects.create)(booking=late.booking)
    communicator, _ = await open_socket(late.family, call.pk)
    assert await closed_with(communicator) == 4410
    call = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert (call.status, call.end_reason) == ("ended", "no_show")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_message"),
        ('{"type": 5}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        (json.dumps({"type": "offer", "sdp": "x" * (64 * 1024 + 1)}), "too_large"),
        ('{"type": "offer", "sdp": "hello"}', "bad_sdp"),
        ('{"type": "offer", "sdp": "v=0\\r\\ns=-\\r\\n"}', "bad_sdp"),
        ('{"type": "offer"}', "bad_sdp"),
        ('{"type": "offer", "sdp": ["v=0"]}', "bad_sdp"),
        ('{"type": "control", "action": "pause"}', "forbidden"),
    ],
)
async def test_refused_messages_get_an_error_and_the_socket_stays(opened, payload, code) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    await next_of(family, "state")
    await family.send_to(text_data=payload)
    error = await next_of(family, "error")
    assert error["code"] == code
    assert error["message"]
    # Still open and working: a heartbeat is accepted silently, a bad type answered.
    await family.send_json_to({"type": "heartbeat"})
    await family.send_json_to({"type": "nope"})
    assert (await next_of(family, "error"))["code"] == "unknown_type"
    call = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert call.status == CallStatus.WAITING
    await family.disconnect()


async def test_a_monitor_offering_to_send_is_refused(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    monitor, _ = await open_socket(setup.officer, call.pk)
    await next_of(monitor, "state")
    await monitor.send_json_to(
        {
            "type": "offer",
            "sdp": SENDRECV_OFFER.format(direction="sendrecv", fingerprint=FINGERPRINT),
        }
    )
    assert (await next_of(monitor, "error"))["code"] == "send_not_allowed"
    await monitor.disconnect()


async def test_a_flood_closes_that_socket_only(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    await next_of(family, "state")
    await next_of(prisoner, "state")
    for _ in range(200):
        await family.send_json_to({"type": "heartbeat"})
    assert await closed_with(family) == 4429
    # The call and the other participant are unaffected.
    await prisoner.send_json_to({"type": "nope"})
    assert (await next_of(prisoner, "error"))["code"] == "unknown_type"
    call = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert call.status == CallStatus.LIVE
    await prisoner.disconnect()


async def test_monitor_controls_pause_resume_message_terminate(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    monitor, _ = await open_socket(setup.officer, call.pk)
    await next_of(monitor, "state")
    await monitor.send_json_to({"type": "control", "action": "pause", "reason": "check"})
    paused = await next_of(family, "state")
    while paused["status"] != "paused":
        paused = await next_of(family, "state")
    assert paused["pause_reason"] == "staff"
    await monitor.send_json_to({"type": "control", "action": "resume"})
    resumed = await next_of(prisoner, "state")
    while resumed["status"] != "live" or resumed["pause_reason"] is not None:
        resumed = await next_of(prisoner, "state")
    await monitor.send_json_to({"type": "control", "action": "message", "text": "Hello"})
    assert (await next_of(family, "message"))["text"] == "Hello"
    await monitor.send_json_to({"type": "control", "action": "terminate", "reason": ""})
    assert (await next_of(monitor, "error"))["code"] == "reason_required"
    await monitor.send_json_to({"type": "control", "action": "explode"})
    assert (await next_of(monitor, "error"))["code"] == "bad_control"
    await monitor.send_json_to({"type": "control", "action": "terminate", "reason": "Rules"})
    for communicator in (family, prisoner, monitor):
        assert (await next_of(communicator, "ended"))["reason"] == "terminated"
        assert await closed_with(communicator) == 4410


async def test_permission_is_rechecked_on_every_message(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    monitor, _ = await open_socket(setup.officer, call.pk)
    await next_of(monitor, "state")
    from establishments.models import StaffMembership

    await sync_to_async(StaffMembership.objects.filter(user=setup.officer).delete)()
    await monitor.send_json_to({"type": "heartbeat"})
    assert await closed_with(monitor) == 4403


async def test_leave_and_rejoin_keep_the_timer(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    live = await next_of(prisoner, "state")
    ends_at = live["ends_at"]
    await family.disconnect()  # a drop
    dropped = await next_of(prisoner, "state")
    while not any(
        p["role"] == "family" and not p["connected"] for p in dropped["participants"]
    ):
        dropped = await next_of(prisoner, "state")
    assert dropped["status"] == "live"
    family, _ = await open_socket(setup.family, call.pk)
    back = await next_of(family, "state")
    assert back["status"] == "live"
    assert back["ends_at"] == ends_at
    await family.send_json_to({"type": "leave"})
    assert await closed_with(family) == 1000
    await prisoner.send_json_to({"type": "leave"})
    assert await closed_with(prisoner) == 1000
    call = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert (call.status, call.end_reason) == ("ended", "completed")


async def test_warnings_and_the_end_of_time(opened) -> None:  # type: ignore[no-untyped-def]
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    await next_of(prisoner, "state")
    # Bring the end close: 61.5 seconds from now crosses the 5-minute mark (long
    # ago, so not announced) and, a moment later, the 1-minute mark.
    soon = timezone.now() + timedelta(seconds=61.5)
    await sync_to_async(Call.objects.filter(pk=call.pk).update)(ends_at=soon)
    await sync_to_async(services._push_state_now)(call.pk)
    warning = await next_of(family, "warning", timeout=6)
    assert warning["minutes_left"] == 1
    await sync_to_async(Call.objects.filter(pk=call.pk).update)(
        ends_at=timezone.now() + timedelta(seconds=1)
    )
    await sync_to_async(services._push_state_now)(call.pk)
    assert (await next_of(family, "ended", timeout=6))["reason"] == "time_up"
    assert await closed_with(prisoner) in (4410,)
    call = await sync_to_async(Call.objects.get)(pk=call.pk)
    assert call.end_reason == "time_up"


async def test_heartbeat_silence_closes_the_socket(opened, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from calls import consumers

    monkeypatch.setattr(consumers, "HEARTBEAT_TIMEOUT", 1.5)
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    await next_of(family, "state")
    assert await closed_with_timeout(family, 6) == 4408
    roles = await sync_to_async(
        lambda: set(
            Call.objects.get(pk=call.pk)
            .connections.filter(left_at__isnull=True)
            .values_list("role", flat=True)
        )
    )()
    assert roles == set()


async def closed_with_timeout(communicator: WebsocketCommunicator, timeout: float) -> int:
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def test_a_participant_mutes_and_the_others_are_told(opened) -> None:  # type: ignore[no-untyped-def]
    """Microphone off/on (issue 13): the other side and monitors see "muted"."""
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    await next_of(family, "state")
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    await next_of(prisoner, "state")
    await family.send_json_to({"type": "mute", "muted": True})

    async def family_muted(communicator: WebsocketCommunicator, muted: bool) -> dict:
        while True:
            state = await next_of(communicator, "state")
            side = next(p for p in state["participants"] if p["role"] == "family")
            if side["muted"] is muted:
                return state

    state = await family_muted(prisoner, True)
    assert next(p for p in state["participants"] if p["role"] == "prisoner")["muted"] is False
    await family.send_json_to({"type": "mute", "muted": False})
    await family_muted(prisoner, False)
    # Not a boolean: refused, nothing changes.
    await family.send_json_to({"type": "mute", "muted": "yes"})
    assert (await next_of(family, "error"))["code"] == "bad_mute"
    await family.disconnect()
    await prisoner.disconnect()


async def test_monitors_hear_each_event_and_families_do_not(opened) -> None:  # type: ignore[no-untyped-def]
    """The officer's "What happened" list updates live (issue 13, defect 7); events name
    staff, so they go to monitors only."""
    setup, call = opened
    family, _ = await open_socket(setup.family, call.pk)
    await next_of(family, "state")
    monitor, _ = await open_socket(setup.officer, call.pk)
    await next_of(monitor, "state")
    await sync_to_async(services.call_message)(call_id=call.pk, actor=setup.officer, text="Hello")
    event = await next_of(monitor, "event")
    while event["kind"] != "message":  # its own and the family's joins come first
        event = await next_of(monitor, "event")
    assert setup.officer.email in event["text"]
    assert event["time_label"] and event["id"]
    seen = []
    while True:
        message = await family.receive_json_from(timeout=3)
        seen.append(message["type"])
        if message["type"] == "message":
            break
    assert "event" not in seen
    assert await family.receive_nothing(timeout=0.5)
    await family.disconnect()
    await monitor.disconnect()


async def test_a_second_socket_of_the_same_side_replaces_the_first(opened, settings) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, defect 5: the older socket is closed (4412), the side stays connected,
    and nobody is told the family dropped."""
    from monitoring.models import Alert

    settings.CALL_DROP_ALERT_GRACE_SECONDS = 0
    setup, call = opened
    prisoner, _ = await open_socket(setup.terminal_user, call.pk)
    await next_of(prisoner, "state")
    first, _ = await open_socket(setup.family, call.pk)
    await next_of(first, "state")
    second, _ = await open_socket(setup.family, call.pk)
    await next_of(second, "state")
    error = await next_of(first, "error")
    assert error["code"] == "replaced"
    assert await closed_with(first) == 4412
    rows = await sync_to_async(
        lambda: list(
            Call.objects.get(pk=call.pk)
            .connections.filter(role="family")
            .values_list("left_reason", flat=True)
        )
    )()
    assert sorted(rows) == ["", "replaced"]
    from calls.selectors import connected_roles

    assert "family" in await sync_to_async(connected_roles)(call.pk)
    assert not await sync_to_async(Alert.objects.filter(call_id=call.pk).exists)()
    await second.disconnect()
    await prisoner.disconnect()


async def test_a_monitor_connecting_late_is_told_the_calls_open_alerts(opened) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, defect 6: face_checks_off reached a monitor only once it sent an offer."""
    from monitoring.models import AlertKind
    from monitoring.services import alert_raise

    setup, call = opened
    await sync_to_async(alert_raise)(call=call, kind=AlertKind.FACE_CHECKS_OFF, side="family")
    monitor, _ = await open_socket(setup.officer, call.pk)
    await next_of(monitor, "state")
    alert = await next_of(monitor, "alert")
    assert alert["kind"] == "face_checks_off"
    assert alert["label"].startswith("Face checks are off")
    family, _ = await open_socket(setup.family, call.pk)
    seen = [(await family.receive_json_from(timeout=3))["type"]]
    assert "alert" not in seen
    await monitor.disconnect()
    await family.disconnect()
