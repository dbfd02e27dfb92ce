"""Dashboard alerts name their call, group per call newest first, and a participant who
rejoins within the grace raises none (issue 13, defect 8); codes reach people as words."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calls import services as call_services
from calls.labels import alert_label, status_label
from calls.models import CallConnection, CallRole, CallStatus
from monitoring import dashboard
from monitoring.models import Alert, AlertKind
from monitoring.services import alert_participant_dropped, alert_raise
from tests.monitoring.test_call_detail import live_call

pytestmark = pytest.mark.django_db


def _connect(call, role):  # type: ignore[no-untyped-def]
    now = timezone.now()
    return CallConnection.objects.create(
        call=call, role=role, channel_name=f"test.{role}", connected_at=now, last_seen_at=now
    )


def _raise(call, kind, side, minutes_ago):  # type: ignore[no-untyped-def]
    alert = alert_raise(call=call, kind=kind, side=side)
    Alert.objects.filter(pk=alert.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return alert


def test_an_alert_names_its_call_and_links_to_it(establishment_x) -> None:
    call = live_call(establishment_x)
    alert = alert_raise(call=call, kind=AlertKind.UNAPPROVED_FACE, side="family")
    data = dashboard.alert_data(Alert.objects.get(pk=alert.pk))
    booking = call.booking
    assert booking.prisoner.prison_number in data["call_label"]
    assert booking.prisoner.full_name in data["call_label"]
    assert booking.lead_visitor.legal_name in data["call_label"]
    assert booking.terminal.name in data["call_label"]
    local = timezone.localtime(booking.starts_at, establishment_x.tz)
    assert data["call_label"].startswith(f"{local:%H:%M} · ")
    assert data["call_url"] == reverse(
        "monitoring:call_detail", args=[establishment_x.code, call.pk]
    )
    assert data["label"] == "Unapproved face on camera (family's side)"
    assert data["call_ended"] is False


def test_alerts_are_grouped_per_call_newest_first(establishment_x) -> None:
    first, second = live_call(establishment_x), live_call(establishment_x)
    old = _raise(first, AlertKind.PARTICIPANT_DROPPED, "family", 30)
    mid = _raise(second, AlertKind.UNAPPROVED_FACE, "prisoner", 20)
    new = _raise(first, AlertKind.UNAPPROVED_FACE, "family", 10)
    alerts = dashboard.open_alerts(establishment_x)
    assert [a["id"] for a in alerts] == [new.pk, mid.pk, old.pk]
    groups = dashboard.alert_groups(alerts)
    assert [g["call"] for g in groups] == [str(first.pk), str(second.pk)]
    assert [a["id"] for a in groups[0]["alerts"]] == [new.pk, old.pk]


def test_dashboard_page_shows_groups_in_the_same_order(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    first, second = live_call(establishment_x), live_call(establishment_x)
    _raise(first, AlertKind.PARTICIPANT_DROPPED, "family", 30)
    _raise(second, AlertKind.UNAPPROVED_FACE, "prisoner", 20)
    client.force_login(people.officer_x)
    html = client.get(reverse("monitoring:dashboard", args=[establishment_x.code])).content.decode()
    newest, oldest = f'data-alert-call="{second.pk}"', f'data-alert-call="{first.pk}"'
    assert html.index(newest) < html.index(oldest)
    assert second.booking.prisoner.full_name in html


def test_ending_a_call_offers_to_acknowledge_its_alerts(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    call, other = live_call(establishment_x), live_call(establishment_x)
    for minutes in (3, 2, 1):
        _raise(call, AlertKind.UNAPPROVED_FACE, "family", minutes)
    kept = _raise(other, AlertKind.UNAPPROVED_FACE, "family", 1)
    call_services.call_end(call_id=call.pk, reason="completed")
    client.force_login(people.officer_x)
    page = client.get(reverse("monitoring:call_detail", args=[establishment_x.code, call.pk]))
    assert "This call has 3 alerts to acknowledge." in page.content.decode()
    url = reverse("monitoring:call_alerts_acknowledge", args=[establishment_x.code, call.pk])
    response = client.post(url, {"next": "call"})
    assert response.status_code == 302
    assert not Alert.objects.filter(call=call, acknowledged_at__isnull=True).exists()
    assert Alert.objects.filter(pk=kept.pk, acknowledged_at__isnull=True).exists()
    assert set(Alert.objects.filter(call=call).values_list("acknowledged_by", flat=True)) == {
        people.officer_x.pk
    }


def test_acknowledging_a_call_elsewhere_or_as_hq_is_refused(  # type: ignore[no-untyped-def]
    client, people, establishment_x
) -> None:
    call = live_call(establishment_x)
    _raise(call, AlertKind.UNAPPROVED_FACE, "family", 1)
    url = reverse("monitoring:call_alerts_acknowledge", args=[establishment_x.code, call.pk])
    for who in (people.hq, people.officer_y, people.family_a):
        client.force_login(who)
        assert client.post(url).status_code in (403, 404)
    assert Alert.objects.filter(call=call, acknowledged_at__isnull=True).count() == 1


def test_a_participant_back_within_the_grace_raises_no_alert(
    establishment_x, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    call = live_call(establishment_x)
    _connect(call, CallRole.PRISONER)
    dropped = _connect(call, CallRole.FAMILY)
    call_services.call_leave(connection_id=dropped.pk, dropped=True)
    _connect(call, CallRole.FAMILY)  # the page reloaded and rejoined
    assert alert_participant_dropped(call_id=call.pk, side=CallRole.FAMILY) is None
    assert not Alert.objects.exists()


def test_a_participant_still_gone_after_the_grace_raises_one(establishment_x) -> None:
    call = live_call(establishment_x)
    dropped = _connect(call, CallRole.FAMILY)
    call_services.call_leave(connection_id=dropped.pk, dropped=True)
    alert = alert_participant_dropped(call_id=call.pk, side=CallRole.FAMILY)
    assert alert is not None and alert.kind == AlertKind.PARTICIPANT_DROPPED


@pytest.mark.django_db(transaction=True)
def test_the_drop_check_waits_for_the_grace_under_eager_celery(establishment_x, settings) -> None:  # type: ignore[no-untyped-def]
    """Under `make run` (eager Celery) the check runs on a timer, not at once."""
    settings.CALL_DROP_ALERT_GRACE_SECONDS = 1
    call = live_call(establishment_x)
    dropped = _connect(call, CallRole.FAMILY)
    started = timezone.now()
    call_services.call_leave(connection_id=dropped.pk, dropped=True)
    assert not Alert.objects.exists()  # not yet: the participant may be back
    done = threading.Event()
    deadline = timezone.now() + timedelta(seconds=60)
    while not done.is_set() and timezone.now() < deadline:
        if Alert.objects.filter(call=call).exists():
            done.set()
        else:
            done.wait(0.1)
    assert done.is_set(), "the delayed drop check never ran"
    raised = Alert.objects.get(call=call)
    assert raised.created_at - started >= timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "pause", "end", "label"),
    [
        ("live", "", "", "Live"),
        ("paused", "unapproved_face", "", "Paused: an unapproved face was seen"),
        ("paused", "staff", "", "Paused: paused by staff"),
        ("ended", "", "terminated", "Ended: ended by staff"),
        ("ended", "", "time_up", "Ended: time ran out"),
        ("waiting", "", "", "Waiting to start"),
        ("confirmed", "", "", "Booked"),
    ],
)
def test_statuses_read_as_plain_words(status, pause, end, label) -> None:  # type: ignore[no-untyped-def]
    assert status_label(status, pause, end) == label


def test_no_code_reaches_a_tile_or_an_alert(establishment_x) -> None:
    call = live_call(establishment_x, status=CallStatus.PAUSED, pause_reason="unapproved_face")
    tile = dashboard.tile(call.booking)
    assert tile["status_label"] == "Paused: an unapproved face was seen"
    assert "_" not in tile["status_label"]
    for kind in AlertKind.values:
        for side in ("family", "prisoner", ""):
            assert "_" not in alert_label(kind, side)
    assert alert_label("face_checks_off", "family") == (
        "Face checks are off for the family's side (someone was checked by hand)"
    )


def test_the_family_is_told_the_reason_staff_gave(client, establishment_x, people) -> None:  # type: ignore[no-untyped-def]
    from calls.selectors import call_state_payload, call_with_booking

    call = live_call(establishment_x)
    call_services.call_terminate(call_id=call.pk, actor=people.officer_x, reason="Phone held up")
    state = call_state_payload(call_with_booking(call.pk))
    assert state["status_label"] == "Ended: ended by staff"
    assert state["end_note"] == "Phone held up"
    lead = call.booking.lead_visitor.user
    booking = call.booking
    booking.aup_accepted_at = timezone.now()
    booking.save(update_fields=["aup_accepted_at"])
    client.force_login(lead)
    page = client.get(reverse("calls:room", args=[call.pk]))
    assert "Reason given by prison staff: Phone held up" in page.content.decode()
