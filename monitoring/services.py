"""Writes of the monitoring app."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from calls.models import Call
from establishments.models import Establishment
from monitoring.models import Alert, AlertKind, StaffTestCall
from purplevisits.realtime import call_group, establishment_group, group_send_on_commit

logger = logging.getLogger(__name__)


def alert_raise(
    *,
    call: Call,
    kind: str,
    side: str = "",
    snapshot_jpeg: bytes | None = None,
) -> Alert:
    """Record an alert and push it to the establishment's dashboards after commit."""
    with transaction.atomic():
        alert = Alert(
            establishment_id=call.booking.establishment_id, call=call, kind=kind, side=side
        )
        if snapshot_jpeg:
            alert.snapshot.save("snapshot.jpg", ContentFile(snapshot_jpeg), save=False)
        alert.full_clean()
        alert.save()
        group_send_on_commit(
            establishment_group(alert.establishment_id),
            {"type": "dashboard.alert", "alert_id": alert.pk},
        )
    return alert


@transaction.atomic
def alert_acknowledge(*, alert_id: int, actor: User) -> bool:
    """Conditional update: the first officer to acknowledge wins; False if already done."""
    alert = Alert.objects.select_related("establishment").get(pk=alert_id)
    updated = Alert.objects.filter(pk=alert_id, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor
    )
    if updated:
        audit_record(
            actor=actor,
            action=AuditAction.ALERT_ACKNOWLEDGE,
            establishment=alert.establishment,
            target=alert,
            detail={"kind": alert.kind, "call": str(alert.call_id)},
        )
        group_send_on_commit(
            establishment_group(alert.establishment_id),
            {"type": "dashboard.alert", "alert_id": alert.pk},
        )
    return bool(updated)


def alert_acknowledge_for_call(*, call_id: Any, establishment: Establishment, actor: User) -> int:
    """Acknowledge every open alert of one call (e.g. once it has ended); how many."""
    with transaction.atomic():
        ids = list(
            Alert.objects.select_for_update()
            .filter(call_id=call_id, establishment=establishment, acknowledged_at__isnull=True)
            .values_list("pk", flat=True)
        )
        done = 0
        for alert_id in ids:
            done += alert_acknowledge(alert_id=alert_id, actor=actor)
    return done


def control_refusal_record(
    *,
    actor: User | AnonymousUser | None,
    call: Call | None,
    action: str,
    code: str,
    message: str,
    request: Any = None,
    channel: str = "web",
) -> None:
    """A refused call control (wrong person, wrong establishment, bad input): write it
    to the establishment's audit log and the security log. Never raises."""
    from purplevisits.observability import security_event

    user = actor if isinstance(actor, User) else None
    try:
        with transaction.atomic():
            audit_record(
                actor=user,
                action=AuditAction.PERMISSION_DENIED,
                establishment=call.booking.establishment if call is not None else None,
                target=call,
                reason=message[:300],
                detail={"control": str(action)[:20], "code": code, "channel": channel},
            )
    finally:
        security_event(
            "call_control_refused",
            request=request,
            user_id=user.pk if user else None,
            call_id=str(call.pk) if call is not None else "",
            control=str(action)[:20],
            code=code,
            channel=channel,
        )


def alert_participant_dropped(*, call_id: Any, side: str) -> Alert | None:
    """A family or prisoner socket dropped while the call was running: alert staff.

    Run CALL_DROP_ALERT_GRACE_SECONDS after the drop (calls.services schedules it);
    re-reads the call, so a call that ended meanwhile, or a participant who has
    rejoined (a reload, a network blip), raises nothing.
    """
    from calls.models import CallStatus
    from calls.selectors import connected_roles

    call = (
        Call.objects.select_related("booking")
        .filter(pk=call_id, status__in=[CallStatus.LIVE, CallStatus.PAUSED])
        .first()
    )
    if call is None or side in connected_roles(call.pk):
        return None
    with transaction.atomic():
        alert = alert_raise(call=call, kind=AlertKind.PARTICIPANT_DROPPED, side=side)
        # Officers on the call's own page hear of it too (SIGNALLING.md ``alert``).
        group_send_on_commit(
            call_group(call.pk),
            {"type": "call.alert", "kind": alert.kind, "side": side, "snapshot_url": None},
        )
    return alert


def alert_face_checks_off(*, call_id: Any) -> Alert | None:
    """The family side of this call is not face-checked (someone on it was verified by
    hand): the dashboard says so, once per call, so officers know to watch it."""
    call = Call.objects.select_related("booking").filter(pk=call_id).first()
    if call is None:
        return None
    with transaction.atomic():
        # One per call, even when a relay takes the call over and starts again.
        Call.objects.select_for_update().filter(pk=call.pk).first()
        if Alert.objects.filter(call=call, kind=AlertKind.FACE_CHECKS_OFF).exists():
            return None
        return alert_raise(call=call, kind=AlertKind.FACE_CHECKS_OFF, side="family")


# --- Staff test calls ---------------------------------------------------------------


class TestCallRefused(Exception):
    """A staff test call cannot be placed (wrong stage, busy laptop, wrong person)."""

    __test__ = False  # not a pytest test class

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


TEST_PRISONER_FIRST_NAME = "Test"
TEST_PRISONER_LAST_NAME = "Prisoner (staff test calls)"


def _test_prisoner(establishment: Establishment) -> Any:
    """The establishment's fictional prisoner for test calls (created once)."""
    from datetime import date

    from establishments.models import Prisoner

    number = f"Z{establishment.pk % 10000:04d}TC"
    prisoner = Prisoner.objects.filter(prison_number=number).first()
    if prisoner is None:
        prisoner = Prisoner(
            prison_number=number,
            first_name=TEST_PRISONER_FIRST_NAME,
            last_name=TEST_PRISONER_LAST_NAME,
            date_of_birth=date(1970, 1, 1),
            establishment=establishment,
            location="Test calls",
        )
        prisoner.full_clean()
        prisoner.save()
    elif prisoner.establishment_id != establishment.pk:
        raise TestCallRefused(
            "TEST_PRISONER_TAKEN",
            _("Prison number %(number)s is in use: ask an administrator.") % {"number": number},
        )
    return prisoner


def _stand_in_visitor(user: User, prisoner: Any) -> tuple[Any, Any]:
    """The staff member's visitor profile (kept unverified: it can book nothing real)
    and an approved connection to the test prisoner only."""
    from datetime import date

    from identity.models import Connection, ConnectionStatus, Relationship, VisitorProfile

    profile = VisitorProfile.objects.filter(user=user).first()
    if profile is None:
        profile = VisitorProfile(
            user=user,
            legal_name=(user.get_full_name() or user.email or user.get_username())[:150],
            date_of_birth=date(1970, 1, 1),
            phone="test call",
            country_of_residence="GB",
        )
        profile.full_clean()
        profile.save()
    connection = Connection.objects.filter(
        visitor=profile, prisoner=prisoner, status=ConnectionStatus.APPROVED
    ).first()
    if connection is None:
        connection = Connection(
            visitor=profile,
            prisoner=prisoner,
            relationship=Relationship.FRIEND,
            status=ConnectionStatus.APPROVED,
            decided_at=timezone.now(),
            decision_reason="Staff test call",
        )
        connection.full_clean()
        connection.save()
    return profile, connection


def test_call_place(
    *,
    establishment: Establishment,
    actor: User,
    terminal_id: int,
    family_user_id: int,
    now: Any = None,
) -> StaffTestCall:
    """A visits admin places a test call that starts now on one of the establishment's
    laptops; ``family_user`` (a staff member there) joins it as the family."""
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    from bookings.models import Booking, BookingOrigin, BookingStatus
    from establishments.models import RolloutStage, StaffRole, Terminal
    from establishments.selectors import has_role_at

    if not has_role_at(actor, establishment, StaffRole.VISITS_ADMIN):
        raise TestCallRefused("FORBIDDEN", _("Only visits admins can place test calls."))
    if establishment.rollout_stage != RolloutStage.TEST_CALLS:
        raise TestCallRefused(
            "NOT_TEST_STAGE",
            _("%(name)s is not at the test-calls stage (it is at '%(stage)s').")
            % {"name": establishment.name, "stage": establishment.get_rollout_stage_display()},
        )
    family_user = User.objects.filter(pk=family_user_id, is_active=True).first()
    if family_user is None or not has_role_at(family_user, establishment, StaffRole.OFFICER):
        raise TestCallRefused(
            "NOT_STAFF", _("The person playing the family must be staff at this establishment.")
        )
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    ends = now + timedelta(minutes=establishment.call_minutes)
    try:
        with transaction.atomic():
            terminal = (
                Terminal.objects.select_for_update()
                .filter(pk=terminal_id, establishment=establishment, is_active=True)
                .first()
            )
            if terminal is None:
                raise TestCallRefused(
                    "NO_TERMINAL", _("Choose one of this establishment's laptops.")
                )
            if Booking.objects.filter(
                terminal=terminal,
                status__in=[BookingStatus.REQUESTED, BookingStatus.CONFIRMED],
                starts_at__lt=ends,
                ends_at__gt=now,
            ).exists():
                raise TestCallRefused(
                    "TERMINAL_BUSY",
                    _("%(laptop)s has a call booked now: choose another.")
                    % {"laptop": terminal.name},
                )
            prisoner = _test_prisoner(establishment)
            profile, connection = _stand_in_visitor(family_user, prisoner)
            booking = Booking(
                establishment=establishment,
                prisoner=prisoner,
                terminal=terminal,
                lead_visitor=profile,
                connection=connection,
                starts_at=now,
                ends_at=ends,
                allowance_month=now.date().replace(day=1),
                status=BookingStatus.CONFIRMED,
                origin=BookingOrigin.FAMILY,
                created_by=actor,
            )
            booking.full_clean()
            booking.save()
            test_call = StaffTestCall(
                booking=booking,
                establishment=establishment,
                placed_by=actor,
                family_played_by=family_user,
            )
            test_call.full_clean()
            test_call.save()
            audit_record(
                actor=actor,
                action=AuditAction.TEST_CALL_PLACE,
                establishment=establishment,
                target=booking,
                detail={"terminal": terminal.name, "family_played_by": family_user.email},
            )
    except ValidationError as exc:
        raise TestCallRefused("INVALID", " ".join(exc.messages)) from None
    except IntegrityError:
        raise TestCallRefused(
            "TERMINAL_BUSY",
            _("That laptop or the test prisoner is busy now: try again shortly."),
        ) from None
    return test_call


test_call_place.__test__ = False  # type: ignore[attr-defined]  # a service, not a pytest test


def alert_snapshots_delete_expired(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete evidence snapshots older than the retention (default 90 days).

    The Alert row stays (who, when, which call); only the image goes. The files are
    removed after commit, so a rolled-back run deletes nothing. Returns how many.
    """
    from django.conf import settings

    now = now or timezone.now()
    days = days if days is not None else settings.ALERT_SNAPSHOT_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    with transaction.atomic():
        rows = list(
            Alert.objects.select_for_update()
            .filter(created_at__lt=cutoff)
            .exclude(snapshot="")
            .values_list("pk", "snapshot")
        )
        if not rows:
            return 0
        Alert.objects.filter(pk__in=[pk for pk, _ in rows]).update(snapshot="")
        names = [name for _, name in rows]

        def delete_files() -> None:
            storage = Alert._meta.get_field("snapshot").storage  # type: ignore[union-attr]
            for name in names:
                try:
                    storage.delete(name)
                except OSError:
                    logger.exception("could not delete snapshot %s", name)

        transaction.on_commit(delete_files)
    return len(rows)
