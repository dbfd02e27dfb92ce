"""Reads that span relations: who may do what where, and what the public pages list."""

from __future__ import annotations

import functools
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Prefetch, QuerySet

from establishments.models import (
    Country,
    Establishment,
    StaffMembership,
    StaffRole,
    VisitSession,
)

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


MAX_QUERY_LENGTH = 100


def search_key(text: str) -> str:
    """Text as the search compares it: case, accents (ŵ, ŷ, â) and punctuation folded.

    static/js/establishment-search.js folds the same way, so the filter as you type and
    the server's ?q= answer agree.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def establishment_search_text(establishment: Establishment) -> str:
    """What a search matches an establishment on: its name and its town (both names)."""
    return search_key(" ".join([establishment.name, establishment.town, establishment.town_cy]))


@dataclass(frozen=True)
class HomeEntry:
    establishment: Establishment
    sessions: list[SessionTimes]
    town: str  # in the page's language
    search_text: str  # what the as-you-type filter matches
    matches: bool  # matches the ?q= search (the others are rendered hidden)


@dataclass(frozen=True)
class CountryGroup:
    country: str
    label: str
    entries: list[HomeEntry]

    @property
    def matches(self) -> int:
        return sum(entry.matches for entry in self.entries)


def home_establishments(query: str = "", language: str = "en-gb") -> list[CountryGroup]:
    """The home page's list: every live establishment, grouped by country (Wales first
    on Welsh pages), each marked whether its name or town holds every word of ``query``.

    The page renders the ones that do not match as hidden, so the filter as you type
    (static/js/establishment-search.js) can widen a search the server narrowed. Two
    queries whatever the size of the estate.
    """
    words = search_key(query[:MAX_QUERY_LENGTH]).split()
    by_country: dict[str, list[HomeEntry]] = defaultdict(list)
    for establishment, sessions in live_establishments_with_sessions():
        text = establishment_search_text(establishment)
        by_country[establishment.country].append(
            HomeEntry(
                establishment=establishment,
                sessions=sessions,
                town=establishment.town_in(language),
                search_text=text,
                matches=all(word in text for word in words),
            )
        )
    order = [Country.ENGLAND, Country.WALES]
    if language == "cy":
        order.reverse()
    return [
        CountryGroup(country=str(country), label=str(country.label), entries=by_country[country])
        for country in order
        if by_country.get(country)
    ]


def visitor_establishments(user: User) -> QuerySet[Establishment]:
    """The establishments of the people in prison this visitor is approved to call (the
    help page shows their visits teams). Pending requests reveal nothing: approved only."""
    if not getattr(user, "is_authenticated", False):
        return Establishment.objects.none()
    from identity.models import ConnectionStatus

    return Establishment.objects.filter(
        prisoners__connections__visitor__user=user.pk,
        prisoners__connections__status=ConnectionStatus.APPROVED,
    ).distinct()


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
