"""Evidence snapshots are deleted after 90 days (daily Celery beat task)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from monitoring import tasks
from monitoring.models import Alert, AlertKind
from monitoring.services import alert_raise, alert_snapshots_delete_expired
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    return tmp_path


def alert_aged(days: float) -> Alert:
    call = factories.CallFactory()
    alert = alert_raise(
        call=call, kind=AlertKind.UNAPPROVED_FACE, side="family", snapshot_jpeg=b"\xff\xd8\xffjpeg"
    )
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(days=days))
    return Alert.objects.get(pk=alert.pk)


def test_snapshots_older_than_90_days_are_deleted_and_the_alert_kept(private_media) -> None:
    old, recent = alert_aged(91), alert_aged(89)
    old_path = private_media / old.snapshot.name
    recent_path = private_media / recent.snapshot.name
    assert old_path.exists() and recent_path.exists()
    assert tasks.delete_old_alert_snapshots.apply().get() == 1
    assert not old_path.exists() and recent_path.exists()
    old.refresh_from_db()
    recent.refresh_from_db()
    assert not old.snapshot and recent.snapshot  # the alert itself stays
    assert alert_snapshots_delete_expired() == 0  # idempotent


def test_alerts_without_a_snapshot_are_left_alone() -> None:
    call = factories.CallFactory()
    alert = alert_raise(call=call, kind=AlertKind.UNAPPROVED_FACE, side="family")
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert alert_snapshots_delete_expired() == 0
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_the_task_runs_daily_from_beat() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["monitoring-delete-old-snapshots"]
    assert entry["task"] == tasks.delete_old_alert_snapshots.name
    assert entry["schedule"] == 24 * 60 * 60
