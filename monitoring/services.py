"""Writes of the monitoring app."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils import timezone

from calls.models import Call
from establishments.models import Establishment
from monitoring.models import Alert, AuditAction, AuditEntry
from purplevisits.realtime import establishment_group, group_send_on_commit

logger = logging.getLogger(__name__)


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
