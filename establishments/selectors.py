"""Reads that span relations: who may do what where, and what the public pages list."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Prefetch, QuerySet

from establishments.models import Establishment, StaffMembership, StaffRole, VisitSession

# Roles that may act at an establishment, in increasing power. HQ is national and
# read-only, so it is not part of the local ladder.
ROLE_LADDER: dict[str, int] = {StaffRole.OFFICER: 1, StaffRole.VISITS_ADMIN: 2}

User = AuthUser | AnonymousUser


def staff_memberships(user: User) -> QuerySet[StaffMembership]:
    if not getattr(user, "is_authenticated", False):
        return StaffMembership.objects.none()
    return StaffMembership.objects.filter(user=user.pk).select_related("establishment")


def is_staff_member(user: User) -> bool:
    return staff_memberships(user).exists()


def is_hq(user: User) -> bool:
    return staff_memberships(user).filter(role=StaffRole.HQ).exists()


def establishments_for_role(user: User, minimum_role: str) -> QuerySet[Establishment]:
    """Establishments where ``user`` holds ``minimum_role`` or a stronger local role."""
    wanted = [role for role, rank in ROLE_LADDER.items() if rank >= ROLE_LADDER[minimum_role]]
    if not getattr(user, "is_authenticated", False):
        return Establishment.objects.none()
    return Establishment.objects.filter(
        staff_memberships__user=user.pk, staff_memberships__role__in=wanted
    ).distinct()


def has_role_at(user: User, establishment: Establishment | int, minimum_role: str) -> bool:
    establishment_id = establishment if isinstance(establishment, int) else establishment.pk
    return establishments_for_role(user, minimum_role).filter(pk=establishment_id).exists()


@dataclass(frozen=True)
class SessionTimes:
    weekday: str
    times: list[str]


def live_establishments_with_sessions() -> list[tuple[Establishment, list[SessionTimes]]]:
    """Live establishments with their weekly call times, for the public home page."""
    establishments = Establishment.objects.live().prefetch_related(
        Prefetch(
            "visit_sessions",
            queryset=VisitSession.objects.order_by("weekday", "start_time"),
        )
    )
    result = []
    for establishment in establishments:
        by_day: dict[int, list[str]] = defaultdict(list)
        labels: dict[int, str] = {}
        for session in establishment.visit_sessions.all():
            by_day[session.weekday].append(f"{session.start_time:%H:%M}–{session.end_time:%H:%M}")
            labels[session.weekday] = session.get_weekday_display()
        result.append(
            (
                establishment,
                [SessionTimes(weekday=labels[day], times=by_day[day]) for day in sorted(by_day)],
            )
        )
    return result


@functools.cache
def _account_facts_sql() -> str:
    from allauth.mfa.models import Authenticator

    from establishments.models import Terminal

    terminals, memberships, authenticators = (
        model._meta.db_table for model in (Terminal, StaffMembership, Authenticator)
    )
    # Quoted identifiers the standard way, which PostgreSQL and SQLite both accept.
    # Only table names from the models go in; the values are parameters.
    return (
        f'SELECT EXISTS(SELECT 1 FROM "{terminals}" WHERE "user_id" = %s), '  # noqa: S608
        f'EXISTS(SELECT 1 FROM "{memberships}" WHERE "user_id" = %s), '
        f'EXISTS(SELECT 1 FROM "{authenticators}" WHERE "user_id" = %s AND "type" = %s)'
    )


@dataclass(frozen=True)
class AccountFacts:
    is_terminal: bool  # a prison laptop's own sign-in
    is_member: bool  # has a staff membership
    has_totp: bool  # has set up an authenticator app


def account_facts(user: object) -> AccountFacts | None:
    """What kind of account this is, in one query, remembered for the request.

    Every signed-in request asks (terminal lock-down, staff two-factor, the nav), so
    this is plain SQL: the ORM's three Exists() subqueries cost ~3 ms to compile each
    time (bench/booking_rush.py), the query itself a tenth of that.
    """
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_account_facts", None)
    if cached is not None:
        return cached
    from allauth.mfa.models import Authenticator
    from django.db import connection

    with connection.cursor() as cursor:
        pk = user.pk  # type: ignore[attr-defined]
        cursor.execute(_account_facts_sql(), [pk, pk, pk, Authenticator.Type.TOTP])
        row = cursor.fetchone()
    facts = AccountFacts(*(bool(value) for value in row))
    user._account_facts = facts  # type: ignore[attr-defined]
    return facts
