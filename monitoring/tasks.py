"""Celery tasks of the monitoring app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from monitoring import services


@shared_task(name="monitoring.tasks.delete_old_alert_snapshots")
def delete_old_alert_snapshots() -> int:
    """Daily (CELERY_BEAT_SCHEDULE): evidence snapshots are kept 90 days."""
    return services.alert_snapshots_delete_expired()


@shared_task(name="monitoring.tasks.alert_if_still_dropped")
def alert_if_still_dropped(call_id: str, side: str) -> int | None:
    """A participant's socket dropped a little while ago: alert staff unless they are
    back (a page reload or a short network blip rejoins within the grace)."""
    alert = services.alert_participant_dropped(call_id=call_id, side=side)
    return alert.pk if alert else None
