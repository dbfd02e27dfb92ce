"""Writes of the monitoring app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils import timezone

from calls.models import Call
from establishments.models import Establishment
from monitoring.models import Alert, AlertKind, AuditAction, AuditEntry
from purplevisits.realtime import establishment_group, group_send_on_commit


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    establishment: Establishment | None = None,
    target: models.Model | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record a staff action (or a refused one). Call it inside the action's transaction."""
    user = actor if isinstance(actor, User) else None
    label = (user.email or user.get_username()) if user else "system"
    return AuditEntry.objects.create(
        actor=user,
        actor_label=label[:254],
        establishment=establishment,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        reason=reason,
        detail=detail or {},
    )


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

    Called after the drop has been committed; re-reads the call so that a call that
    ended meanwhile raises nothing.
    """
    from calls.models import CallStatus

    call = (
        Call.objects.select_related("booking")
        .filter(pk=call_id, status__in=[CallStatus.LIVE, CallStatus.PAUSED])
        .first()
    )
    if call is None:
        return None
    return alert_raise(call=call, kind=AlertKind.PARTICIPANT_DROPPED, side=side)
