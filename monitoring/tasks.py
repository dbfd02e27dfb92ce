"""Celery tasks of the monitoring app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from monitoring import services


@shared_task(name="monitoring.tasks.delete_old_alert_snapshots")
def delete_old_alert_snapshots() -> int:
    """Daily (CELERY_BEAT_SCHEDULE): evidence snapshots are kept 90 days."""
    return services.alert_snapshots_delete_expired()
