"""What an establishment offers — weekly sessions, active terminals, blocked dates —
read once and kept in the cache for the pages that only look.

Every booking page and booking works its slots out from these three tables, and they
change a few times a year, so they come from the cache: one cache read instead of three
queries. The one question that must be current when a booking is written — is the day
blocked (a lockdown declared a minute ago)? — is asked of the database there
(bookings/services.py::check_slot).

A change to any of the three (admin, the staff pages, a management command) removes
the cached copy at once and again when its transaction commits, so a copy read by
another process in between cannot outlive it; the copy also expires after
``SCHEDULE_CACHE_SECONDS`` whatever happens (a change made with raw SQL, a cache
that was unreachable when it should have been cleared). An unreachable cache is not an
error here: the schedule is read from the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from establishments.models import BlockedDate, Establishment, Terminal, VisitSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    sessions: tuple[VisitSession, ...]  # by weekday and start time
    terminal_ids: tuple[int, ...]  # active terminals, by id
    blocked_from: date  # ``blocked`` holds every blocked date from this day on
    blocked: frozenset[date]

    def blocked_between(self, establishment: Establishment, first: date, last: date) -> set[date]:
        if first >= self.blocked_from:
            return {day for day in self.blocked if first <= day <= last}
        return _blocked_between(establishment, first, last)


def _key(establishment_id: int) -> str:
    return f"establishment-schedule:{establishment_id}"


def _blocked_between(establishment: Establishment, first: date, last: date) -> set[date]:
    return set(
        BlockedDate.objects.filter(
            establishment=establishment, date__gte=first, date__lte=last
        ).values_list("date", flat=True)
    )


def _read(establishment: Establishment, *, blocked_from: date, blocked_to: date) -> Schedule:
    # order_by: the models' default orderings would join the establishment table.
    return Schedule(
        sessions=tuple(establishment.visit_sessions.order_by("weekday", "start_time")),
        terminal_ids=tuple(
            Terminal.objects.filter(establishment=establishment, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        ),
        blocked_from=blocked_from,
        blocked=frozenset(_blocked_between(establishment, blocked_from, blocked_to)),
    )


def schedule_for(
    establishment: Establishment, first: date, last: date, *, cached: bool = False
) -> Schedule:
    """The schedule with at least the blocked dates from ``first`` to ``last``.

    ``cached``: from the cache when it is there (read-only pages); otherwise, and
    for everything that writes, from the database."""
    if not cached:
        return _read(establishment, blocked_from=first, blocked_to=last)
    key = _key(establishment.pk)
    try:
        schedule = cache.get(key)
    except Exception:  # the cache is down: the database still answers
        logger.warning("schedule cache unreachable", exc_info=True)
        schedule = None
    if isinstance(schedule, Schedule):
        return schedule
    # Yesterday on, in the establishment's time: covers every day a family can book.
    today = timezone.localtime(timezone.now(), establishment.tz).date()
    schedule = _read(establishment, blocked_from=today - timedelta(days=1), blocked_to=date.max)
    try:
        cache.set(key, schedule, settings.SCHEDULE_CACHE_SECONDS)
    except Exception:
        logger.warning("schedule cache unreachable", exc_info=True)
    return schedule


def forget_schedule(establishment_id: int) -> None:
    """Drop the cached schedule now and once the current transaction commits."""
    key = _key(establishment_id)

    def forget() -> None:
        try:
            cache.delete(key)
        except Exception:  # stale for SCHEDULE_CACHE_SECONDS at most
            logger.warning("schedule cache unreachable: %s not cleared", key, exc_info=True)

    forget()
    transaction.on_commit(forget)


@receiver(post_save, sender=VisitSession)
@receiver(post_delete, sender=VisitSession)
@receiver(post_save, sender=Terminal)
@receiver(post_delete, sender=Terminal)
@receiver(post_save, sender=BlockedDate)
@receiver(post_delete, sender=BlockedDate)
def _schedule_changed(
    sender: type, instance: VisitSession | Terminal | BlockedDate, **kwargs: object
) -> None:
    forget_schedule(instance.establishment_id)
