"""Reads of the bookings app: the slots an establishment offers, and who booked what."""

from __future__ import annotations

import functools
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection as database
from django.db.models import Case, CharField, Model, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bookings.models import (
    ACTIVE_STATUSES,
    ALLOWANCE_STATUSES,
    Booking,
    BookingOrigin,
    BookingStatus,
    BookingVisitor,
    CancelReason,
    normalise_short_reference,
)
from bookings.rules import day_label, month_label, next_month
from bookings.timezones import time_zone_for_country
from establishments.models import Establishment, Prisoner, VisitSession
from establishments.schedule import schedule_for
from identity.group import group_companions
from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    ReviewStatus,
    VisitorProfile,
)


@dataclass
class Slot:
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    local_start: datetime  # establishment time
    local_end: datetime
    capacity: int = 0
    busy_terminal_ids: set[int] = field(default_factory=set)
    terminal_ids: list[int] = field(default_factory=list)  # active, by id: the capacity
    blocked: bool = False  # a blocked date (only listed with include_blocked)

    @property
    def free(self) -> int:
        return max(self.capacity - len(self.busy_terminal_ids), 0)

    @property
    def key(self) -> str:
        """The value a form carries: the UTC start, e.g. '2026-12-01T10:00:00Z'."""
        return slot_key(self.starts_at)


def slot_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_slot_key(value: str) -> datetime | None:
    """A slot key back to an aware datetime; None for anything malformed."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment


def local_day_bounds(establishment: Establishment, day: date) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of ``day`` in the establishment's time, as aware datetimes."""
    tz = establishment.tz
    return (
        datetime.combine(day, time.min, tzinfo=tz),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz),
    )


def _wall_clock(day: date, minutes: int, tz: zoneinfo.ZoneInfo) -> datetime | None:
    """A wall-clock time on ``day``; None if the clocks skip it (spring forward)."""
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    round_trip = local.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local


def session_slots(
    establishment: Establishment, sessions: list[VisitSession], day: date
) -> list[tuple[datetime, datetime]]:
    """(start, end) in establishment time of every slot the templates give on ``day``."""
    tz = establishment.tz
    starts: dict[datetime, datetime] = {}
    for session in sessions:
        if not session.applies_on(day):
            continue
        begin = session.start_time.hour * 60 + session.start_time.minute
        finish = session.end_time.hour * 60 + session.end_time.minute
        minute = begin
        while minute + establishment.call_minutes <= finish:
            local = _wall_clock(day, minute, tz)
            if local is not None:
                # Real elapsed time, so a slot across a clock change is still call_minutes.
                end = (
                    local.astimezone(UTC) + timedelta(minutes=establishment.call_minutes)
                ).astimezone(tz)
                starts.setdefault(local, end)
            minute += establishment.slot_step_minutes
    return sorted(starts.items())


def booking_window(establishment: Establishment, now: datetime | None = None) -> tuple[date, date]:
    """First and last local day on which a family may book (inclusive)."""
    today = timezone.localtime(now or timezone.now(), establishment.tz).date()
    return (
        today + timedelta(days=establishment.min_notice_days),
        today + timedelta(days=establishment.max_days_ahead),
    )


def slots_between(
    establishment: Establishment,
    first_day: date,
    last_day: date,
    *,
    include_blocked: bool = False,
    exclude_booking_id: int | None = None,
    with_load: bool = True,
    cached: bool = False,
) -> list[Slot]:
    """Every slot of the visit sessions from ``first_day`` to ``last_day`` with its load.

    Four queries whatever the range: sessions, blocked dates, terminals, bookings (not
    read without ``with_load``: ``busy_terminal_ids`` stay empty). With
    ``include_blocked`` the slots of blocked dates are listed too, marked ``blocked``.
    ``cached``: the first three from the cached schedule (establishments/schedule.py,
    cleared whenever they change) instead of the database.
    """
    schedule = schedule_for(establishment, first_day, last_day, cached=cached)
    sessions = list(schedule.sessions)
    blocked = schedule.blocked_between(establishment, first_day, last_day)
    terminal_ids = list(schedule.terminal_ids)
    tz = establishment.tz
    slots: list[Slot] = []
    day = first_day
    while day <= last_day:
        if include_blocked or day not in blocked:
            for local_start, local_end in session_slots(establishment, sessions, day):
                slots.append(
                    Slot(
                        starts_at=local_start.astimezone(UTC),
                        ends_at=local_end.astimezone(UTC),
                        local_start=local_start,
                        local_end=local_end,
                        capacity=len(terminal_ids),
                        terminal_ids=terminal_ids,
                        blocked=day in blocked,
                    )
                )
        day += timedelta(days=1)
    if not slots or not with_load:
        return slots
    # A laptop is busy for a slot when another call on it, or the changeover after
    # that call, overlaps the slot and the slot's own changeover (bookings.services).
    changeover = timedelta(minutes=establishment.changeover_minutes)
    bookings = Booking.objects.filter(
        establishment=establishment,
        status__in=ACTIVE_STATUSES,
        starts_at__lt=slots[-1].ends_at + changeover,
        terminal_free_at__gt=slots[0].starts_at,
        terminal_id__in=terminal_ids,
    )
    if exclude_booking_id is not None:
        bookings = bookings.exclude(pk=exclude_booking_id)
    by_day: dict[date, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for starts_at, free_at, terminal_id in bookings.values_list(
        "starts_at", "terminal_free_at", "terminal_id"
    ):
        # Listed under each local day it touches (a changeover can cross midnight).
        for day in {starts_at.astimezone(tz).date(), free_at.astimezone(tz).date()}:
            by_day[day].append((starts_at, free_at, terminal_id))
    for slot in slots:
        for starts_at, free_at, terminal_id in by_day.get(slot.local_start.date(), ()):
            if starts_at < slot.ends_at + changeover and free_at > slot.starts_at:
                slot.busy_terminal_ids.add(terminal_id)
    return slots


def bookable_slots(
    establishment: Establishment,
    *,
    now: datetime | None = None,
    exclude_booking_id: int | None = None,
) -> list[Slot]:
    """Slots a family may book now: inside the window, not blocked, not in the past
    (for showing: the schedule may come from the cache). ``exclude_booking_id``: the
    load without that booking (the one a family is moving frees its laptop)."""
    now = now or timezone.now()
    first_day, last_day = booking_window(establishment, now)
    return [
        slot
        for slot in slots_between(
            establishment, first_day, last_day, cached=True, exclude_booking_id=exclude_booking_id
        )
        if slot.starts_at > now
    ]


def find_slot(
    establishment: Establishment, starts_at: datetime, *, include_blocked: bool = False
) -> Slot | None:
    """The establishment's slot starting at ``starts_at`` (any day), or None.

    From the cached schedule, and without its load: the services read the slot's
    bookings with the prisoner's, and ask the database whether the day is blocked."""
    day = timezone.localtime(starts_at, establishment.tz).date()
    for slot in slots_between(
        establishment, day, day, include_blocked=include_blocked, with_load=False, cached=True
    ):
        if slot.starts_at == starts_at:
            return slot
    return None


def group_by_day(slots: list[Slot]) -> list[tuple[date, list[Slot]]]:
    days: dict[date, list[Slot]] = defaultdict(list)
    for slot in slots:
        days[slot.local_start.date()].append(slot)
    return sorted(days.items())


# --- The family's side -----------------------------------------------------------------


def visitor_profile_for(user: object) -> VisitorProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return VisitorProfile.objects.filter(user=user.pk).first()  # type: ignore[attr-defined]


def own_connection_at(user: object, code: str, connection_id: object) -> Connection | None:
    """The user's approved connection ``connection_id`` to a prisoner at the
    establishment ``code``, with the profile, prisoner and establishment; or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        pk = int(str(connection_id))
    except ValueError:
        return None
    if not 0 < pk < 2**63:
        return None
    user_id = user.pk  # type: ignore[attr-defined]
    if database.vendor == "postgresql":
        return _own_connection_in_sql(pk, user_id, code)
    return (
        Connection.objects.select_related("visitor", "prisoner__establishment")
        .filter(
            pk=pk,
            visitor__user=user_id,
            status=ConnectionStatus.APPROVED,
            prisoner__establishment__code=code,
        )
        .order_by()
        .first()
    )


# The rows own_connection_at joins, in order, with the table alias of each.
_OWN_CONNECTION_MODELS: tuple[tuple[type[Model], str], ...] = (
    (Connection, "c"),
    (VisitorProfile, "v"),
    (Prisoner, "p"),
    (Establishment, "e"),
)


@functools.cache
def _own_connection_sql() -> str:
    """own_connection_at's query, written once from the models' tables and columns.

    Every booking page and booking asks it; the ORM spent 0.7 ms of CPU compiling its
    four-table join each time, six times what running it costs (bench/request_cost.py).
    PostgreSQL only: psycopg hands back the same Python values the ORM would (no
    converters), which tests/bookings/test_selectors.py checks field by field."""

    def column(model: type[Model], name: str) -> str:
        return f'"{model._meta.get_field(name).column}"'  # type: ignore[union-attr]

    selected = ", ".join(
        f'{alias}."{field.column}"'
        for model, alias in _OWN_CONNECTION_MODELS
        for field in model._meta.concrete_fields
    )
    c, v, p, e = (model for model, _alias in _OWN_CONNECTION_MODELS)
    return (
        f"SELECT {selected} "  # noqa: S608
        f'FROM "{c._meta.db_table}" c '
        f'JOIN "{v._meta.db_table}" v ON v.{column(v, "id")} = c.{column(c, "visitor")} '
        f'JOIN "{p._meta.db_table}" p ON p.{column(p, "id")} = c.{column(c, "prisoner")} '
        f'JOIN "{e._meta.db_table}" e ON e.{column(e, "id")} = p.{column(p, "establishment")} '
        f"WHERE c.{column(c, 'id')} = %s AND v.{column(v, 'user')} = %s "
        f"AND c.{column(c, 'status')} = %s AND e.{column(e, 'code')} = %s"
    )


def _own_connection_in_sql(pk: int, user_id: int, code: str) -> Connection | None:
    with database.cursor() as cursor:
        cursor.execute(_own_connection_sql(), [pk, user_id, ConnectionStatus.APPROVED.value, code])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Model] = []
    start = 0
    for model, _alias in _OWN_CONNECTION_MODELS:
        fields = model._meta.concrete_fields
        values = row[start : start + len(fields)]
        instances.append(model.from_db(database.alias, [f.attname for f in fields], values))
        start += len(fields)
    connection, visitor, prisoner, establishment = instances
    connection.visitor = visitor  # type: ignore[attr-defined]
    connection.prisoner = prisoner  # type: ignore[attr-defined]
    prisoner.establishment = establishment  # type: ignore[attr-defined]
    return connection  # type: ignore[return-value]


def approved_connections(
    profile: VisitorProfile, establishment: Establishment | None = None
) -> QuerySet[Connection]:
    connections = Connection.objects.filter(
        visitor=profile, status=ConnectionStatus.APPROVED
    ).select_related("prisoner", "prisoner__establishment")
    if establishment is not None:
        connections = connections.filter(prisoner__establishment=establishment)
    return connections.order_by("prisoner__last_name", "prisoner__first_name")


def companions_for(connection: Connection) -> tuple[list[VisitorProfile], list[Dependant]]:
    """Who the lead visitor may bring: the adults in their own group who can call this
    prisoner (identity.group), and their approved dependants. Never another family's
    visitors of the same prisoner (DOMAIN.md, privacy between families)."""
    others = list(group_companions(connection.visitor_id, connection.prisoner_id))
    dependants = list(
        Dependant.objects.filter(
            lead_visitor=connection.visitor_id, status=ReviewStatus.APPROVED
        ).order_by("first_name", "last_name")
    )
    return others, dependants


def bookings_for_visitor(profile: VisitorProfile) -> QuerySet[Booking]:
    """Bookings the visitor leads or joins, newest first, with what the list shows."""
    return (
        Booking.objects.filter(Q(lead_visitor=profile) | Q(visitors__profile=profile))
        .distinct()
        .select_related("prisoner", "establishment", "terminal", "lead_visitor")
        .prefetch_related(
            Prefetch(
                "visitors",
                queryset=BookingVisitor.objects.select_related("profile", "dependant"),
            )
        )
        .order_by("-starts_at")
    )


@dataclass(frozen=True)
class MonthAllowance:
    month: date  # the first of the month
    used: int  # calls booked or had that count
    allowed: int

    @property
    def left(self) -> int:
        return max(self.allowed - self.used, 0)


@dataclass(frozen=True)
class PrisonerCall:
    """One of a prisoner's bookings that counts for a month's allowance."""

    prisoner_id: int
    month: date
    status: str
    starts_at: datetime
    ends_at: datetime
    lead_visitor_id: int
    booking_id: int = 0

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def _months(first_day: date, last_day: date) -> list[date]:
    months = []
    month = first_day.replace(day=1)
    while month <= last_day:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def prisoner_calls(prisoner_ids: set[int], first_day: date, last_day: date) -> list[PrisonerCall]:
    """The prisoners' bookings that count for the months of ``first_day``..``last_day``:
    one query, for both the allowance left and the times they are already busy."""
    if not prisoner_ids:
        return []
    rows = (
        Booking.objects.filter(
            prisoner_id__in=prisoner_ids,
            allowance_month__in=_months(first_day, last_day),
            status__in=ALLOWANCE_STATUSES,
        )
        .order_by()
        .values_list(
            "prisoner_id",
            "allowance_month",
            "status",
            "starts_at",
            "ends_at",
            "lead_visitor_id",
            "pk",
        )
    )
    return [PrisonerCall(*row) for row in rows]


def allowances_for(
    connections: list[Connection],
    establishment: Establishment,
    first_day: date,
    last_day: date,
    *,
    calls: list[PrisonerCall] | None = None,
) -> dict[int, list[MonthAllowance]]:
    """Per connection (by id): each month of ``first_day``..``last_day`` with the
    prisoner's calls used and allowed. One query whatever the number of connections
    (none when ``calls`` from prisoner_calls are given)."""
    months = _months(first_day, last_day)
    if calls is None:
        calls = prisoner_calls({c.prisoner_id for c in connections}, first_day, last_day)
    counts: dict[tuple[int, date], int] = defaultdict(int)
    for call in calls:
        counts[(call.prisoner_id, call.month)] += 1
    allowed = establishment.calls_per_month
    return {
        c.pk: [MonthAllowance(m, counts.get((c.prisoner_id, m), 0), allowed) for m in months]
        for c in connections
    }


def next_call_note(
    establishment: Establishment,
    month: date,
    months: list[MonthAllowance],
    *,
    first_day: date,
    last_day: date,
) -> str:
    """When the next call can be booked after ``month`` has none left: the first later
    month of the window with a call left, or the day the month after the window opens
    for booking (``max_days_ahead`` before it starts)."""
    for later in months:
        if later.month > month and later.left:
            return _("next from %(day)s") % {"day": day_label(max(later.month, first_day))}
    after = next_month(max([month, *(m.month for m in months)]))
    opens = after - timedelta(days=establishment.max_days_ahead)
    return _("no more can be booked yet: calls in %(month)s can be booked from %(day)s") % {
        "month": month_label(after),
        "day": day_label(opens),
    }


def mark_slots(
    slots: list[Slot],
    *,
    connection: Connection | None,
    profile: VisitorProfile | None,
    establishment: Establishment,
    calls: list[PrisonerCall],
    months: list[MonthAllowance],
    first_day: date,
    last_day: date,
) -> dict[str, str]:
    """Why each slot cannot be booked by this family with this connection (by slot key;
    no entry: bookable), in the family's words, the same rules booking_create applies:
    the prisoner's restriction, a call already then, the month's allowance, a full slot.
    Another family's call is never named: only that the person is not free."""
    marks: dict[str, str] = {}
    prisoner = connection.prisoner if connection is not None else None  # type: ignore[attr-defined]
    name = prisoner.first_name if prisoner is not None else ""
    left = {m.month: m for m in months}
    busy = [
        c for c in calls if prisoner is not None and c.prisoner_id == prisoner.pk and c.is_active
    ]
    for slot in slots:
        day = slot.local_start.date()
        month = left.get(day.replace(day=1))
        reason = ""
        if prisoner is not None:
            restricted = prisoner.video_calls_restricted_until
            overlapping = [
                c for c in busy if c.starts_at < slot.ends_at and c.ends_at > slot.starts_at
            ]
            if restricted is not None and day <= restricted:
                reason = _("no video calls with %(name)s until %(day)s") % {
                    "name": name,
                    "day": day_label(restricted + timedelta(days=1)),
                }
            elif any(profile is not None and c.lead_visitor_id == profile.pk for c in overlapping):
                reason = _("you already have a call then")
            elif overlapping:
                reason = _("%(name)s is not free then") % {"name": name}
            elif month is not None and not month.left:
                reason = _("%(month)s's call with %(name)s is used – %(next)s") % {
                    "month": month_label(month.month),
                    "name": name,
                    "next": next_call_note(
                        establishment, month.month, months, first_day=first_day, last_day=last_day
                    ),
                }
        if not reason and slot.free <= 0:
            reason = _("fully booked")
        if reason:
            marks[slot.key] = reason
    return marks


def booking_to_move(
    profile: VisitorProfile, establishment: Establishment, reference: object
) -> Booking | None:
    """The lead visitor's own confirmed call at ``establishment`` still to come, by its
    (UUID) reference, that they are choosing a new time for; None for anything else."""
    try:
        value = uuid.UUID(str(reference))
    except ValueError:
        return None
    return (
        Booking.objects.select_related("connection", "prisoner")
        .filter(
            reference=value,
            lead_visitor=profile,
            establishment=establishment,
            status=BookingStatus.CONFIRMED,
            starts_at__gt=timezone.now(),
        )
        .first()
    )


def allowance_used(prisoner_id: int, month: date, *, exclude_booking_id: int | None = None) -> int:
    bookings = Booking.objects.filter(
        prisoner_id=prisoner_id, allowance_month=month, status__in=ALLOWANCE_STATUSES
    )
    if exclude_booking_id is not None:
        bookings = bookings.exclude(pk=exclude_booking_id)
    return bookings.count()


@dataclass(frozen=True)
class LocalTime:
    """A slot time in the family's own time zone, or why we cannot tell it."""

    zone: zoneinfo.ZoneInfo | None
    differs: bool
    country: str


def family_time_zone(profile: VisitorProfile | None, establishment: Establishment) -> LocalTime:
    country = (profile.country_of_residence if profile else "GB").upper() or "GB"
    if country == "GB":
        return LocalTime(zone=None, differs=False, country=country)
    zone = time_zone_for_country(country)
    if zone is None:
        return LocalTime(zone=None, differs=True, country=country)
    # Countries on UK time all year (e.g. Ireland, Portugal) still get the column:
    # families there reasonably want to see it confirmed.
    return LocalTime(zone=zone, differs=True, country=country)


# --- Staff side ------------------------------------------------------------------------


def bookings_between(
    establishment: Establishment, first_day: date, last_day: date
) -> QuerySet[Booking]:
    start = local_day_bounds(establishment, first_day)[0]
    end = local_day_bounds(establishment, last_day)[1]
    return (
        Booking.objects.filter(establishment=establishment, starts_at__gte=start, starts_at__lt=end)
        .select_related("prisoner", "terminal", "lead_visitor", "lead_visitor__user")
        .prefetch_related(
            Prefetch(
                "visitors",
                queryset=BookingVisitor.objects.select_related("profile", "dependant"),
            )
        )
        .order_by("starts_at", "terminal__name")
    )


# What became of a prisoner's request, as the staff list says it.
REQUEST_STATES = {
    "waiting": gettext_lazy("Waiting for the family"),
    "accepted": gettext_lazy("Accepted"),
    "declined": gettext_lazy("Declined by the family"),
    "lapsed": gettext_lazy("Lapsed: not answered in time"),
    "cancelled": gettext_lazy("Cancelled"),
}
REQUESTS_PER_PAGE = 50


def prisoner_requests(
    establishment: Establishment, *, state: str = "", since: datetime
) -> QuerySet[Booking]:
    """Requests entered at ``establishment`` since ``since`` or for a call still to come,
    newest first, each with ``request_state`` (a key of REQUEST_STATES); only those in
    ``state`` when it is given."""
    requests = Booking.objects.filter(
        Q(created_at__gte=since) | Q(starts_at__gte=since),
        establishment=establishment,
        origin=BookingOrigin.PRISONER,
    ).annotate(
        request_state=Case(
            When(status=BookingStatus.REQUESTED, then=Value("waiting")),
            When(cancel_reason=CancelReason.REQUEST_DECLINED, then=Value("declined")),
            When(cancel_reason=CancelReason.REQUEST_LAPSED, then=Value("lapsed")),
            When(status=BookingStatus.CANCELLED, then=Value("cancelled")),
            default=Value("accepted"),  # confirmed, then had (or missed) like any call
            output_field=CharField(),
        )
    )
    if state:
        requests = requests.filter(request_state=state)
    return requests.select_related("prisoner", "lead_visitor", "created_by").order_by(
        "-created_at", "-pk"
    )


def booking_by_short_reference(establishment: Establishment, text: str) -> Booking | None:
    """The booking at ``establishment`` with the short reference a person typed or read
    out (any case, spaces or a dash allowed); None for anything else."""
    value = normalise_short_reference(text)
    if not value:
        return None
    return Booking.objects.filter(establishment=establishment, short_reference=value).first()


def active_bookings_on(establishment: Establishment, day: date) -> QuerySet[Booking]:
    start, end = local_day_bounds(establishment, day)
    return Booking.objects.filter(
        establishment=establishment,
        status__in=ACTIVE_STATUSES,
        starts_at__gte=start,
        starts_at__lt=end,
    )


CANCELLABLE = (BookingStatus.REQUESTED, BookingStatus.CONFIRMED)
