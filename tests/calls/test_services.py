from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from bookings.models import BookingStatus
from calls import selectors, services
from calls.models import Call, CallEvent, CallStatus, EndReason, PauseReason
from tests import factories
from tests.calls.conftest import make_setup


def join_both(call: Call, setup) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    fam = services.call_join(call_id=call.pk, role="family", user=setup.family, channel_name="f")
    pri = services.call_join(
        call_id=call.pk, role="prisoner", user=setup.terminal_user, channel_name="p"
    )
    return fam.pk, pri.pk


def test_call_open_creates_one_call_lazily(setup) -> None:  # type: ignore[no-untyped-def]
    assert not Call.objects.exists()
    first = services.call_open(booking=setup.booking)
    second = services.call_open(booking=setup.booking)
    assert first.pk == second.pk
    assert Call.objects.count() == 1
    assert first.status == CallStatus.WAITING


@pytest.mark.django_db
def test_call_open_refused_before_the_window_and_after_the_slot() -> None:
    early = make_setup(started_minutes_ago=-11)  # starts in 11 minutes: window opens in 1
    with pytest.raises(services.CallRefused) as refused:
        services.call_open(booking=early.booking)
    assert refused.value.close_code == 4409
    assert "from" in refused.value.message
    assert not Call.objects.exists()
    on_time = make_setup(started_minutes_ago=-9)
    assert services.call_open(booking=on_time.booking).status == CallStatus.WAITING
    late = make_setup(started_minutes_ago=31)
    with pytest.raises(services.CallRefused) as refused:
        services.call_open(booking=late.booking)
    assert refused.value.close_code == 4410


def test_cancelled_booking_cannot_be_joined(setup) -> None:  # type: ignore[no-untyped-def]
    setup.booking.status = BookingStatus.CANCELLED
    setup.booking.save()
    with pytest.raises(services.CallRefused) as refused:
        services.call_open(booking=setup.booking)
    assert refused.value.close_code == 4410


def test_call_starts_when_both_sides_are_connected(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    services.call_join(call_id=call.pk, role="family", user=setup.family, channel_name="f")
    call.refresh_from_db()
    assert call.status == CallStatus.WAITING
    services.call_join(call_id=call.pk, role="prisoner", user=setup.terminal_user, channel_name="p")
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert call.started_at is not None
    # 30 minutes from now would pass the slot's end (started a minute ago): capped.
    assert call.ends_at == setup.booking.ends_at
    kinds = list(call.events.values_list("kind", flat=True))
    assert kinds == ["joined", "joined", "started"]


def test_call_lasts_call_minutes_when_the_slot_is_longer(db) -> None:  # type: ignore[no-untyped-def]
    s = make_setup(started_minutes_ago=0, slot_minutes=30, call_minutes=10)
    call = services.call_open(booking=s.booking)
    join_both(call, s)
    call.refresh_from_db()
    assert call.ends_at is not None and call.started_at is not None
    assert call.ends_at - call.started_at == timedelta(minutes=10)


def test_monitor_does_not_start_a_call(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    services.call_join(call_id=call.pk, role="monitor", user=setup.officer, channel_name="m")
    services.call_join(call_id=call.pk, role="family", user=setup.family, channel_name="f")
    call.refresh_from_db()
    assert call.status == CallStatus.WAITING


def test_pause_and_resume_give_the_paused_time_back(db) -> None:  # type: ignore[no-untyped-def]
    s = make_setup(started_minutes_ago=0, slot_minutes=30, call_minutes=20)
    call = services.call_open(booking=s.booking)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        join_both(call, s)
        call.refresh_from_db()
        ends_before = call.ends_at
        assert services.call_pause(call_id=call.pk, reason=PauseReason.UNAPPROVED_FACE)
        assert not services.call_pause(call_id=call.pk, reason=PauseReason.UNAPPROVED_FACE)
        clock.shift(timedelta(seconds=90))
        assert services.call_resume(call_id=call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert call.pause_reason == ""
    assert call.paused_seconds == 90
    assert call.ends_at == ends_before + timedelta(seconds=90)
    assert not services.call_resume(call_id=call.pk)  # not paused any more
    # Automatic pauses and resumes are call events, not staff actions.
    assert not AuditEntry.objects.exists()


def test_paused_time_is_given_back_only_up_to_the_slot_end(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        join_both(call, setup)
        services.call_pause(call_id=call.pk, reason=PauseReason.STAFF, actor=setup.officer)
        clock.shift(timedelta(minutes=5))
        services.call_resume(call_id=call.pk, actor=setup.officer, reason="ok now")
    call.refresh_from_db()
    assert call.ends_at == setup.booking.ends_at


def test_staff_pause_is_audited_and_only_staff_can_resume_it(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    assert services.call_pause(
        call_id=call.pk, reason=PauseReason.STAFF, actor=setup.officer, detail="check ID"
    )
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.CALL_PAUSE
    assert entry.actor == setup.officer
    assert entry.target_id == str(call.pk)
    assert entry.reason == "check ID"
    assert not services.call_resume(call_id=call.pk)  # an automatic resume is refused
    assert services.call_resume(call_id=call.pk, actor=setup.officer)
    assert AuditEntry.objects.filter(action=AuditAction.CALL_RESUME).count() == 1


def test_staff_pause_takes_over_a_face_pause(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    services.call_pause(call_id=call.pk, reason=PauseReason.UNAPPROVED_FACE)
    assert services.call_pause(call_id=call.pk, reason=PauseReason.STAFF, actor=setup.officer)
    call.refresh_from_db()
    assert call.pause_reason == PauseReason.STAFF
    assert not services.call_resume(call_id=call.pk)


def test_unknown_pause_reason_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    with pytest.raises(services.CallActionRefused):
        services.call_pause(call_id=call.pk, reason="boredom")


def test_terminate_needs_a_reason_and_ends_the_booking(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    with pytest.raises(services.CallActionRefused) as refused:
        services.call_terminate(call_id=call.pk, actor=setup.officer, reason="  ")
    assert refused.value.code == "REASON_REQUIRED"
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert services.call_terminate(call_id=call.pk, actor=setup.officer, reason="Abusive")
    assert not services.call_terminate(call_id=call.pk, actor=setup.officer, reason="again")
    call.refresh_from_db()
    setup.booking.refresh_from_db()
    assert call.status == CallStatus.ENDED
    assert call.end_reason == EndReason.TERMINATED
    assert setup.booking.status == BookingStatus.TERMINATED
    assert AuditEntry.objects.get(action=AuditAction.CALL_TERMINATE).reason == "Abusive"
    assert selectors.connected_roles(call.pk) == set()


def test_message_is_validated_and_audited(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    for bad in ["", "   ", "x" * 501]:
        with pytest.raises(services.CallActionRefused):
            services.call_message(call_id=call.pk, actor=setup.officer, text=bad)
    assert services.call_message(call_id=call.pk, actor=setup.officer, text="Five minutes")
    assert CallEvent.objects.filter(kind="message").get().detail == {"text": "Five minutes"}
    assert AuditEntry.objects.filter(action=AuditAction.CALL_MESSAGE).count() == 1


def test_expire_ends_live_calls_at_ends_at_and_no_shows_at_slot_end(db) -> None:  # type: ignore[no-untyped-def]
    s = make_setup(started_minutes_ago=0, call_minutes=10)
    call = services.call_open(booking=s.booking)
    join_both(call, s)
    call.refresh_from_db()
    assert not services.call_expire(call_id=call.pk)
    assert not services.call_expire(call_id=call.pk, now=call.ends_at - timedelta(seconds=1))
    assert services.call_expire(call_id=call.pk, now=call.ends_at)
    call.refresh_from_db()
    s.booking.refresh_from_db()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, EndReason.TIME_UP)
    assert s.booking.status == BookingStatus.COMPLETED

    empty = make_setup(started_minutes_ago=0)
    nobody = services.call_open(booking=empty.booking)
    assert not services.call_expire(
        call_id=nobody.pk, now=empty.booking.ends_at - timedelta(1 / 86400)
    )
    assert services.call_expire(call_id=nobody.pk, now=empty.booking.ends_at)
    nobody.refresh_from_db()
    empty.booking.refresh_from_db()
    assert nobody.end_reason == EndReason.NO_SHOW
    assert empty.booking.status == BookingStatus.NO_SHOW


def test_a_paused_call_runs_until_the_slot_end(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    services.call_pause(call_id=call.pk, reason=PauseReason.UNAPPROVED_FACE)
    call.refresh_from_db()
    assert not services.call_expire(
        call_id=call.pk, now=setup.booking.ends_at - timedelta(seconds=1)
    )
    assert services.call_expire(call_id=call.pk, now=setup.booking.ends_at)


def test_drop_keeps_the_call_and_rejoin_keeps_the_timer(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    fam, _pri = join_both(call, setup)
    call.refresh_from_db()
    ends_at = call.ends_at
    assert services.call_leave(connection_id=fam, dropped=True)
    assert not services.call_leave(connection_id=fam, dropped=True)  # once only
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert selectors.connected_roles(call.pk) == {"prisoner"}
    services.call_join(call_id=call.pk, role="family", user=setup.family, channel_name="f2")
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    assert call.ends_at == ends_at
    assert selectors.connected_roles(call.pk) == {"family", "prisoner"}
    assert "dropped" in set(call.events.values_list("kind", flat=True))


def test_call_ends_completed_when_both_sides_leave(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    fam, pri = join_both(call, setup)
    services.call_leave(connection_id=fam)
    call.refresh_from_db()
    assert call.status == CallStatus.LIVE
    services.call_leave(connection_id=pri)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, EndReason.COMPLETED)


def test_stale_connections_do_not_count(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    services.call_join(call_id=call.pk, role="family", user=setup.family, channel_name="f")
    later = timezone.now() + selectors.STALE_AFTER + timedelta(seconds=1)
    assert selectors.connected_roles(call.pk, later) == set()


def test_revoked_connection_ends_open_calls_only(setup) -> None:  # type: ignore[no-untyped-def]
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    other = factories.CallFactory(status=CallStatus.ENDED, end_reason=EndReason.TIME_UP)
    assert services.call_end_for_revoked_connection(connection_id=setup.booking.connection_id) == 1
    call.refresh_from_db()
    other.refresh_from_db()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, EndReason.REVOKED)
    assert other.end_reason == EndReason.TIME_UP


def test_state_changes_are_pushed_to_the_call_and_the_dashboard(  # type: ignore[no-untyped-def]
    setup, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        "purplevisits.realtime.group_send_now", lambda group, message: sent.append((group, message))
    )
    call = services.call_open(booking=setup.booking)
    join_both(call, setup)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_pause(call_id=call.pk, reason=PauseReason.STAFF, actor=setup.officer)
    groups = {group for group, _ in sent}
    assert groups == {f"call.{call.pk}", f"establishment.{setup.booking.establishment_id}"}
    dashboard = next(m for g, m in sent if g.startswith("establishment."))
    assert dashboard["type"] == "dashboard.call"
    assert dashboard["status"] == "paused"
    assert dashboard["pause_reason"] == "staff"
    state = next(m for g, m in sent if g.startswith("call.") and m["type"] == "call.state")
    assert state["participants"] == [
        {"role": "family", "connected": True, "muted": False, "label": "Family"},
        {"role": "prisoner", "connected": True, "muted": False, "label": "Prison laptop"},
    ]
    assert state["status_label"] == "Paused: paused by staff"
    # The officer's page hears of the event itself too (monitors only, in the consumer).
    event = next(m for g, m in sent if g.startswith("call.") and m["type"] == "call.event")
    assert event["event"]["kind"] == "paused"
    assert event["event"]["text"] == f"Paused (Staff): paused by staff – {setup.officer.email}"


def test_roles(setup) -> None:  # type: ignore[no-untyped-def]
    booking = setup.booking
    assert selectors.booking_role_for_user(booking, setup.family) == "family"
    assert selectors.booking_role_for_user(booking, setup.terminal_user) == "prisoner"
    assert selectors.booking_role_for_user(booking, setup.officer) == "monitor"
    assert selectors.booking_role_for_user(booking, setup.other_officer) is None
    assert selectors.booking_role_for_user(booking, setup.stranger) is None
    other_terminal_user = factories.TerminalFactory(
        establishment=booking.establishment, user=factories.UserFactory()
    ).user
    assert selectors.booking_role_for_user(booking, other_terminal_user) is None
