"""Celery tasks of the identity app: thin wrappers that call services with ids.

Each is idempotent (the services record a result only once) and retries a bounded
number of times on errors that may pass (storage, database).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from identity import services

logger = logging.getLogger(__name__)

RETRYABLE = (OSError, DatabaseError)
MAX_RETRIES = 3


def _retry(task, exc: Exception):  # type: ignore[no-untyped-def]
    """Schedule the next attempt (10 s, 20 s, 40 s). Eagerly run tasks (tests, `make
    run`) get the Retry back as their result, which makes Celery's apply() run the
    next attempt at once instead of raising it to the caller."""
    retry = task.retry(exc=exc, countdown=10 * 2**task.request.retries, throw=False)
    if task.request.is_eager:
        return retry
    raise retry


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def run_identity_face_match(self, check_id: int) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return services.identity_check_run_face_match(check_id=check_id)
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("face match for identity check %s failed", check_id)
            services.identity_check_mark_failed(check_id=check_id)
            return None
        return _retry(self, exc)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def run_dependant_face_check(self, dependant_id: int) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return services.dependant_run_face_check(dependant_id=dependant_id)
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("face check for dependant %s failed", dependant_id)
            services.dependant_mark_failed(dependant_id=dependant_id)
            return None
        return _retry(self, exc)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def run_precall_enrolment(self, profile_id: int, token: str, frame_names: list[str]) -> str | None:  # type: ignore[no-untyped-def]
    """Frames of a pre-call camera check: the names of their (encrypted) private files,
    never the pictures themselves through the broker. Whatever happens, the frames are
    deleted: by the service once read, here when it fails for good."""
    try:
        return services.precall_enrolment_run(
            profile_id=profile_id, token=token, frame_names=frame_names
        )
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("pre-call enrolment of profile %s failed", profile_id)
            services.precall_frames_discard(
                profile_id=profile_id, token=token, frame_names=frame_names
            )
            return None
        return _retry(self, exc)
    except Exception:
        # Nothing to retry (a picture the face code cannot handle, say): keep nothing.
        logger.exception("pre-call enrolment of profile %s failed", profile_id)
        services.precall_frames_discard(profile_id=profile_id, token=token, frame_names=frame_names)
        return None


@shared_task
def delete_leftover_precall_frames() -> int:
    return services.precall_frames_delete_leftover()


@shared_task
def delete_expired_id_images() -> int:
    return services.id_images_delete_expired()


@shared_task
def delete_stale_encodings() -> int:
    return services.encodings_delete_stale()
