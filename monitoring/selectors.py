"""Reads for the audit log and the national roll-out dashboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from calls.models import Call, CallEvent, CallEventKind, EndReason, PauseReason
from establishments.models import Establishment, RolloutStage
from purplevisits.countries import country_name


def audit_entries(
    *,
    establishment: Establishment,
    action: str = "",
    actor: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(establishment=establishment).select_related("actor")
    if action:
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_label__icontains=actor)
    if since:
        entries = entries.filter(created_at__date__gte=since)
    if until:
        entries = entries.filter(created_at__date__lte=until)
    return entries.order_by("-created_at", "-pk")


_DURATION = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())


def _made_calls() -> QuerySet[Call]:
    """Calls that happened: both sides connected (started) and the call is over.
    Staff test calls are not calls families made: they are left out."""
    return Call.objects.filter(
        started_at__isnull=False, ended_at__isnull=False, booking__staff_test_call__isnull=True
    )


@dataclass
class EstablishmentFigures:
    establishment: Establishment
    days_in_stage: int
    calls: int = 0
    hours: float = 0.0
    pauses: int = 0
    face_pauses: int = 0
    terminations: int = 0
    countries: int = 0


@dataclass
class WeekFigures:
    week: date
    calls: int
    hours: float


@dataclass
class NationalFigures:
    calls: int
    hours: float
    countries: list[tuple[str, str, int]]  # (code, name, calls)
    pauses: int
    face_pauses: int
    terminations: int
    stage_counts: list[tuple[str, str, int]]  # (stage, label, establishments)
    establishments: list[EstablishmentFigures] = field(default_factory=list)
    weeks: list[WeekFigures] = field(default_factory=list)

    @property
    def hours_count(self) -> int:
        """A whole number that picks the plural form for ``hours``: 1 only for exactly
        one hour ("1 hour", "1.5 hours")."""
        return int(self.hours) if float(self.hours).is_integer() else 0


def _hours(duration: timedelta | None) -> float:
    return round(duration.total_seconds() / 3600, 1) if duration else 0.0


def national_figures(*, weeks: int = 12, now: datetime | None = None) -> NationalFigures:
    """Figures the Ministry published (calls, hours, countries), computed live.

    A bounded number of queries whatever the size of the estate: one per figure family.
    """
    now = now or timezone.now()
    made = _made_calls()
    totals = made.aggregate(calls=Count("id"), duration=Sum(_DURATION))
    terminations = made.filter(end_reason=EndReason.TERMINATED).count()
    pauses = CallEvent.objects.filter(
        kind=CallEventKind.PAUSED, call__booking__staff_test_call__isnull=True
    )
    pause_totals = pauses.aggregate(
        all=Count("id"), face=Count("id", filter=Q(reason=PauseReason.UNAPPROVED_FACE))
    )
    countries = (
        made.values("booking__lead_visitor__country_of_residence")
        .annotate(calls=Count("id"))
        .order_by("-calls", "booking__lead_visitor__country_of_residence")
    )

    per_establishment: dict[int, dict[str, Any]] = {
        row["booking__establishment"]: dict(row)
        for row in made.values("booking__establishment").annotate(
            calls=Count("id"),
            duration=Sum(_DURATION),
            terminations=Count("id", filter=Q(end_reason=EndReason.TERMINATED)),
            countries=Count("booking__lead_visitor__country_of_residence", distinct=True),
        )
    }
    pauses_per_establishment: dict[int, dict[str, Any]] = {
        row["call__booking__establishment"]: dict(row)
        for row in pauses.values("call__booking__establishment").annotate(
            all=Count("id"), face=Count("id", filter=Q(reason=PauseReason.UNAPPROVED_FACE))
        )
    }
    rows = []
    for establishment in Establishment.objects.order_by("name"):
        figures: dict[str, Any] = per_establishment.get(establishment.pk, {})
        paused: dict[str, Any] = pauses_per_establishment.get(establishment.pk, {})
        rows.append(
            EstablishmentFigures(
                establishment=establishment,
                days_in_stage=max(0, (now - establishment.rollout_stage_changed_at).days),
                calls=figures.get("calls", 0),
                hours=_hours(figures.get("duration")),
                terminations=figures.get("terminations", 0),
                countries=figures.get("countries", 0),
                pauses=paused.get("all", 0),
                face_pauses=paused.get("face", 0),
            )
        )

    first_week = (timezone.localdate(now) - timedelta(weeks=weeks - 1)).isoformat()
    week_rows: dict[date, dict[str, Any]] = {
        row["week"].date() if isinstance(row["week"], datetime) else row["week"]: dict(row)
        for row in made.filter(started_at__date__gte=first_week)
        .annotate(week=TruncWeek("started_at"))
        .values("week")
        .annotate(calls=Count("id"), duration=Sum(_DURATION))
    }
    this_monday = timezone.localdate(now) - timedelta(days=timezone.localdate(now).weekday())
    week_list = []
    for offset in range(weeks - 1, -1, -1):
        monday = this_monday - timedelta(weeks=offset)
        row: dict[str, Any] = week_rows.get(monday, {})
        week_list.append(
            WeekFigures(week=monday, calls=row.get("calls", 0), hours=_hours(row.get("duration")))
        )

    stage_counts = dict(
        Establishment.objects.values_list("rollout_stage").annotate(n=Count("id")).order_by()
    )
    return NationalFigures(
        calls=totals["calls"] or 0,
        hours=_hours(totals["duration"]),
        countries=[
            (code, country_name(code), row["calls"])
            for row in countries
            if (code := row["booking__lead_visitor__country_of_residence"])
        ],
        pauses=pause_totals["all"] or 0,
        face_pauses=pause_totals["face"] or 0,
        terminations=terminations,
        stage_counts=[
            (stage.value, str(stage.label), stage_counts.get(stage.value, 0))
            for stage in RolloutStage
        ],
        establishments=rows,
        weeks=week_list,
    )


@dataclass(frozen=True)
class DashboardAccess:
    establishment: Establishment
    can_control: bool  # officers and visits admins act; HQ only watches


def dashboard_access(user: Any, code: str) -> DashboardAccess | None:
    """Officers (or higher) at the establishment control; HQ sees every one, read-only."""
    from establishments.models import StaffRole
    from establishments.selectors import has_role_at, is_hq

    if not getattr(user, "is_authenticated", False):
        return None
    establishment = Establishment.objects.filter(code=code).first()
    if establishment is None:
        return None
    if has_role_at(user, establishment, StaffRole.OFFICER):
        return DashboardAccess(establishment=establishment, can_control=True)
    if is_hq(user):
        return DashboardAccess(establishment=establishment, can_control=False)
    return None


@dataclass(frozen=True)
class CallDetailAccess:
    call: Call
    can_control: bool  # officers at the call's establishment: watch, listen and act
    # HQ opens the page read-only: status only, no media (DOMAIN: officers watch calls).


def call_detail_access(user: Any, code: str, call_id: Any) -> CallDetailAccess | None:
    """The call at establishment ``code`` if ``user`` may open its page, else None."""
    from calls.selectors import call_with_booking

    access = dashboard_access(user, code)
    if access is None:
        return None
    call = call_with_booking(call_id)
    if call is None or call.booking.establishment_id != access.establishment.pk:
        return None
    return CallDetailAccess(call=call, can_control=access.can_control)


def call_events(call: Call, limit: int = 30) -> list[CallEvent]:
    """The call's latest events (joins, drops, pauses, messages), newest first."""
    return list(
        CallEvent.objects.filter(call=call).select_related("actor").order_by("-created_at")[:limit]
    )


def test_call_candidates(establishment: Establishment) -> tuple[QuerySet[Any], QuerySet[Any]]:
    """(laptops, staff who can play the family) for the test-call form."""
    from django.contrib.auth.models import User

    from establishments.models import StaffRole, Terminal

    terminals = Terminal.objects.filter(establishment=establishment, is_active=True).order_by(
        "name"
    )
    staff = (
        User.objects.filter(
            is_active=True,
            staff_memberships__establishment=establishment,
            staff_memberships__role__in=[StaffRole.OFFICER, StaffRole.VISITS_ADMIN],
        )
        .distinct()
        .order_by("email")
    )
    return terminals, staff


def recent_test_calls(establishment: Establishment, limit: int = 20) -> list[Any]:
    from monitoring.models import StaffTestCall

    return list(
        StaffTestCall.objects.filter(establishment=establishment)
        .select_related("booking", "booking__terminal", "booking__call", "family_played_by")
        .order_by("-created_at")[:limit]
    )


def call_alerts_for_monitor(call_id: Any) -> list[dict[str, Any]]:
    """The call's unacknowledged alerts as the contract's ``alert`` messages, oldest
    first: a monitor who connects late (or reloads) learns what the others were told,
    e.g. that the family side is not face-checked."""
    from calls.labels import alert_label
    from monitoring.models import Alert

    alerts = (
        Alert.objects.filter(call_id=call_id, acknowledged_at__isnull=True)
        .select_related("establishment")
        .order_by("created_at", "pk")[:20]
    )
    return [
        {
            "type": "alert",
            "kind": alert.kind,
            "side": alert.side,
            "label": alert_label(alert.kind, alert.side),
            "snapshot_url": reverse(
                "monitoring:alert_snapshot", args=[alert.establishment.code, alert.pk]
            )
            if alert.snapshot
            else None,
        }
        for alert in alerts
    ]
