import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from calls.models import Call, CallStatus, PauseReason
from monitoring.models import Alert, AlertKind
from monitoring.services import alert_raise
from purplevisits.asgi import application
from purplevisits.realtime import establishment_group, group_send_now
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def todays_call(establishment, *, status=CallStatus.WAITING, hour_offset=0):  # type: ignore[no-untyped-def]
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(
        minutes=5 + 45 * hour_offset
    )
    # Keep it on today's date in the establishment's time zone.
    day_start = timezone.localtime(timezone.now(), establishment.tz).replace(hour=0, minute=0)
    if timezone.localtime(start, establishment.tz).date() != day_start.date():
        start = day_start + timedelta(hours=12)
    call = factories.CallFactory(
        booking__connection__prisoner__establishment=establishment,
        booking__starts_at=start,
        status=status,
    )
    return call


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", 302),
        ("family_a", 403),
        ("officer_x", 200),
        ("visits_admin_x", 200),
        ("officer_y", 404),
        ("hq", 200),
    ],
)
def test_dashboard_page_access(client, people, establishment_x, who, expected) -> None:  # type: ignore[no-untyped-def]
    if who != "anonymous":
        client.force_login(getattr(people, who))
    response = client.get(reverse("monitoring:dashboard", args=[establishment_x.code]))
    assert response.status_code == expected
    if who == "hq":
        assert "you can watch, not act" in response.content.decode()


def test_dashboard_shows_every_call_of_the_day_in_its_column_in_bounded_queries(
    client, people, establishment_x, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(20):
        todays_call(establishment_x, status=CallStatus.LIVE)
    paused = todays_call(establishment_x, status=CallStatus.PAUSED)
    Call.objects.filter(pk=paused.pk).update(pause_reason=PauseReason.UNAPPROVED_FACE)
    upcoming = factories.BookingFactory(
        connection__prisoner__establishment=establishment_x,
        starts_at=todays_call(establishment_x).booking.starts_at,
    )
    factories.CallFactory(
        booking__connection__prisoner__establishment=factories.EstablishmentFactory()
    )
    client.force_login(people.officer_x)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("monitoring:dashboard", args=[establishment_x.code]))
    content = response.content.decode()
    assert content.count('class="tile tile-live"') == 20
    assert content.count('class="tile tile-paused"') == 1
    assert content.count('class="tile tile-upcoming"') == 1
    assert content.count('class="tile tile-waiting"') == 1
    # Plain words, never the code (issue 13, defect 9).
    assert "Paused: an unapproved face was seen" in content
    assert "unapproved_face" not in content
    assert upcoming.prisoner.prison_number in content


def _session_cookie(client, user) -> bytes:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(client, user, code):  # type: ignore[no-untyped-def]
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        cookie = await database_sync_to_async(_session_cookie)(client, user)
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(
        application, f"/ws/staff/{code}/dashboard/", headers=headers
    )
    connected, code_or_protocol = await communicator.connect()
    return communicator, connected, code_or_protocol


@pytest.mark.parametrize(
    ("who", "close_code"),
    [(None, 4401), ("family_a", 4403), ("officer_y", 4403), ("visits_admin_y", 4403)],
)
async def test_socket_refuses_outsiders(client, people, establishment_x, who, close_code) -> None:  # type: ignore[no-untyped-def]
    user = getattr(people, who) if who else None
    communicator, connected, code = await open_socket(client, user, establishment_x.code)
    assert not connected
    assert code == close_code


async def test_socket_refuses_other_origins(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    cookie = await database_sync_to_async(_session_cookie)(client, people.officer_x)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/staff/{establishment_x.code}/dashboard/",
        headers=[
            (b"origin", b"https://evil.example"),
            (b"host", b"localhost"),
            (b"cookie", cookie),
        ],
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_snapshot_then_pushed_changes(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = await database_sync_to_async(todays_call)(establishment_x)
    communicator, connected, _ = await open_socket(client, people.officer_x, establishment_x.code)
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["can_control"] is True
    assert [tile["call"] for tile in snapshot["calls"]] == [str(call.id)]
    assert snapshot["calls"][0]["column"] == "waiting"

    # A service changes the row and pushes the id; the consumer re-reads the database.
    await database_sync_to_async(Call.objects.filter(pk=call.pk).update)(
        status=CallStatus.PAUSED, pause_reason=PauseReason.STAFF
    )
    await database_sync_to_async(group_send_now)(
        establishment_group(establishment_x.pk), {"type": "dashboard.call", "call_id": str(call.id)}
    )
    update = await communicator.receive_json_from(timeout=2)
    assert update["type"] == "call"
    assert (update["call"]["column"], update["call"]["pause_reason"]) == ("paused", "staff")

    # An alert arrives with its snapshot link and can be acknowledged over the socket.
    alert = await database_sync_to_async(alert_raise)(
        call=call, kind=AlertKind.UNAPPROVED_FACE, side="family", snapshot_jpeg=b"\xff\xd8jpeg"
    )
    pushed = await communicator.receive_json_from(timeout=2)
    assert pushed["type"] == "alert" and pushed["alert"]["id"] == alert.pk
    assert pushed["alert"]["snapshot_url"].endswith(f"/alerts/{alert.pk}/snapshot.jpg")
    await communicator.send_to(text_data=json.dumps({"type": "ack", "alert": alert.pk}))
    acknowledged = await communicator.receive_json_from(timeout=2)
    assert acknowledged["alert"]["acknowledged"] is True
    entry = await database_sync_to_async(AuditEntry.objects.get)(action="alert_acknowledge")
    assert entry.actor_label == "officer.x@example.test"
    await communicator.disconnect()


async def test_other_establishments_changes_are_not_sent(
    client, people, establishment_x, establishment_y
) -> None:  # type: ignore[no-untyped-def]
    other = await database_sync_to_async(todays_call)(establishment_y)
    communicator, connected, _ = await open_socket(client, people.officer_x, establishment_x.code)
    await communicator.receive_json_from()
    # Even a message wrongly sent to X's group about Y's call is not shown.
    await database_sync_to_async(group_send_now)(
        establishment_group(establishment_x.pk),
        {"type": "dashboard.call", "call_id": str(other.id)},
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_bad_messages_get_errors_and_hq_cannot_act(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = await database_sync_to_async(todays_call)(establishment_x)
    alert = await database_sync_to_async(alert_raise)(
        call=call, kind=AlertKind.PARTICIPANT_DROPPED, side="family"
    )
    communicator, connected, _ = await open_socket(client, people.hq, establishment_x.code)
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["can_control"] is False and len(snapshot["alerts"]) == 1
    for raw, code in [
        ("{not json", "bad_json"),
        ("[1,2]", "bad_message"),
        ('{"type": "rm"}', "unknown_type"),
        ("x" * 5000, "too_large"),  # the code the call socket uses (socket_json)
    ]:
        await communicator.send_to(text_data=raw)
        reply = await communicator.receive_json_from()
        assert (reply["type"], reply["code"]) == ("error", code)
    await communicator.send_to(text_data=json.dumps({"type": "ack", "alert": alert.pk}))
    reply = await communicator.receive_json_from()
    assert reply["code"] == "forbidden"
    assert not (await database_sync_to_async(Alert.objects.get)(pk=alert.pk)).acknowledged_at
    await communicator.disconnect()


async def test_role_removed_mid_shift_closes_the_socket(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    communicator, connected, _ = await open_socket(client, people.officer_x, establishment_x.code)
    await communicator.receive_json_from()
    await database_sync_to_async(people.officer_x.staff_memberships.all().delete)()
    await communicator.send_to(text_data=json.dumps({"type": "refresh"}))
    output = await communicator.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": 4403}


def test_snapshot_image_is_private_and_logged(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call = todays_call(establishment_x)
    alert = alert_raise(
        call=call,
        kind=AlertKind.UNAPPROVED_FACE,
        side="family",
        snapshot_jpeg=b"\xff\xd8\xff\xe0fake",
    )
    url = reverse("monitoring:alert_snapshot", args=[establishment_x.code, alert.pk])
    client.force_login(people.officer_y)
    assert client.get(url).status_code == 404
    client.force_login(people.family_a)
    assert client.get(url).status_code == 403
    client.force_login(people.officer_x)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xff\xd8\xff\xe0fake"
    assert response["Cache-Control"] == "no-store, private"
    assert (
        AuditEntry.objects.filter(
            action="snapshot_view", actor_label="officer.x@example.test"
        ).count()
        == 1
    )


def test_acknowledge_without_javascript(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    alert = alert_raise(call=todays_call(establishment_x), kind=AlertKind.PARTICIPANT_DROPPED)
    url = reverse("monitoring:alert_acknowledge", args=[establishment_x.code, alert.pk])
    client.force_login(people.hq)
    assert client.post(url).status_code == 403
    client.force_login(people.officer_x)
    assert client.post(url).status_code == 302
    assert client.post(url, follow=True).status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_by == people.officer_x
    assert AuditEntry.objects.filter(action="alert_acknowledge").count() == 1


def test_face_checks_off_is_one_dashboard_alert_per_call(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    from monitoring.services import alert_face_checks_off

    call = todays_call(establishment_x)
    first = alert_face_checks_off(call_id=call.pk)
    assert first is not None and (first.kind, first.side) == ("face_checks_off", "family")
    # A second relay starting the same call's checks does not raise it again.
    assert alert_face_checks_off(call_id=call.pk) is None
    assert Alert.objects.filter(call=call).count() == 1
    client.force_login(people.officer_x)
    page = client.get(reverse("monitoring:dashboard", args=[establishment_x.code]))
    assert "Face checks are off for the family&#x27;s side" in page.content.decode()
