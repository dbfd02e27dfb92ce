"""Every write to the bookings app.

A refusal raises ``BookingRefused(code, message)`` before anything is written (or inside
the transaction, which then rolls back). The scarce things — a terminal for a slot and
a prisoner's monthly allowance — are checked only after ``lock_for_booking`` has locked
the prisoner and terminal rows, and the database constraints back the checks up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db import connection as database
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audit.models import AuditAction
from audit.services import audit_record
from bookings import notifications
from bookings.locking import lock_for_booking
from bookings.models import (
    ACTIVE_STATUSES,
    ALLOWANCE_STATUSES,
    Booking,
    BookingOrigin,
    BookingStatus,
    BookingVisitor,
    CancelReason,
    MoveReason,
)
from bookings.rules import (
    BookingRefused,
    RuleCode,
    day_label,
    month_label,
    next_month,
    slot_label,
)
from bookings.selectors import Slot, booking_window, find_slot
from establishments.models import (
    BlockedDate,
    BlockedDateReason,
    Establishment,
    Prisoner,
    PrisonerStatus,
    RequestMode,
    Terminal,
)
from establishments.schedule import schedule_for
from identity.group import group_companions
from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    ReviewStatus,
    VerificationStatus,
    VisitorProfile,
)

Actor = User | AnonymousUser | None

# Reasons a visits admin gives; the others are set by the system or the family.
STAFF_CANCEL_REASONS = (
    CancelReason.LOCKDOWN,
    CancelReason.STAFF_SHORTAGE,
    CancelReason.TECHNICAL_FAULT,
    CancelReason.PRISONER_MOVED,
    CancelReason.OTHER,
)
BLOCKED_DATE_CANCEL_REASON: dict[str, str] = {
    BlockedDateReason.LOCKDOWN: CancelReason.LOCKDOWN,
    BlockedDateReason.STAFF_SHORTAGE: CancelReason.STAFF_SHORTAGE,
    BlockedDateReason.NETWORK_WORK: CancelReason.TECHNICAL_FAULT,
    BlockedDateReason.OTHER: CancelReason.OTHER,
}


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


# --- The rules, one check each ---------------------------------------------------------


def check_establishment_live(establishment: Establishment) -> None:
    if not establishment.is_live:
        raise BookingRefused(
            RuleCode.ESTABLISHMENT_NOT_LIVE,
            _(
                "%(name)s is not taking video call bookings yet. Its booking page will open when "
                "video calls start there."
            )
            % {"name": establishment.name},
        )


def check_prisoner_available(prisoner: Prisoner, establishment: Establishment, day: date) -> None:
    number = prisoner.prison_number
    if prisoner.status != PrisonerStatus.ACTIVE or prisoner.establishment_id != establishment.pk:
        raise BookingRefused(
            RuleCode.PRISONER_UNAVAILABLE,
            _(
                "Calls with %(number)s cannot be booked at %(name)s: they are not held there at "
                "the moment. If they have moved, ask to connect to them at their new prison."
            )
            % {"number": number, "name": establishment.name},
        )
    restricted = prisoner.video_calls_restricted_until
    if restricted is not None and day <= restricted:
        raise BookingRefused(
            RuleCode.PRISONER_UNAVAILABLE,
            _("%(number)s cannot have video calls until %(day_label)s. Choose a day from then.")
            % {"number": number, "day_label": day_label(restricted + timedelta(days=1))},
        )


def check_slot(
    establishment: Establishment,
    starts_at: datetime,
    *,
    now: datetime,
    enforce_notice: bool = True,
    blocked_from_cache: bool = False,
) -> Slot:
    """The offered slot at ``starts_at``: in the window, not blocked, one of the sessions.

    The sessions and laptops come from the cached schedule (establishments/schedule.py,
    cleared whenever they change). Whether the day is blocked — a lockdown declared a
    minute ago — is read from the database, unless ``blocked_from_cache`` (the booking
    page's early answer: the booking itself asks the database)."""
    first_day, last_day = booking_window(establishment, now)
    day = timezone.localtime(starts_at, establishment.tz).date()
    too_soon = day < first_day if enforce_notice else starts_at <= now
    if starts_at <= now or too_soon or day > last_day:
        raise BookingRefused(
            RuleCode.OUTSIDE_WINDOW,
            _(
                "Calls can be booked from %(day_label)s to %(day_label2)s (%(min_notice_days)s to "
                "%(max_days_ahead)s days ahead). Choose a time in that range."
            )
            % {
                "day_label": day_label(first_day),
                "day_label2": day_label(last_day),
                "min_notice_days": establishment.min_notice_days,
                "max_days_ahead": establishment.max_days_ahead,
            },
        )
    slot = find_slot(establishment, starts_at, include_blocked=True)
    if blocked_from_cache and slot is not None:
        blocked = slot.blocked
    else:
        blocked = _day_blocked(establishment, day, cached=blocked_from_cache)
    if blocked:
        raise BookingRefused(
            RuleCode.DATE_BLOCKED,
            _("%(name)s is not offering calls on %(day_label)s. Choose another day.")
            % {"name": establishment.name, "day_label": day_label(day)},
        )
    if slot is None:
        raise BookingRefused(
            RuleCode.SLOT_NOT_OFFERED,
            _(
                "%(name)s does not offer a call at that time. Choose one of the times on the "
                "booking page."
            )
            % {"name": establishment.name},
        )
    return slot


def _day_blocked(establishment: Establishment, day: date, *, cached: bool) -> bool:
    if cached:
        schedule = schedule_for(establishment, day, day, cached=True)
        return day in schedule.blocked_between(establishment, day, day)
    return BlockedDate.objects.filter(establishment=establishment, date=day).exists()


@dataclass(frozen=True)
class Party:
    lead: VisitorProfile
    others: list[VisitorProfile]
    dependants: list[Dependant]


def check_lead_visitor(connection: Connection, lead: VisitorProfile) -> None:
    if (
        connection.visitor_id != lead.pk
        or connection.status != ConnectionStatus.APPROVED
        or lead.verification_status != VerificationStatus.APPROVED
    ):
        raise BookingRefused(
            RuleCode.VISITOR_NOT_APPROVED,
            _(
                "You need an approved identity and an approved connection to this person "
                "before you can book. Check your account page for what is still needed."
            ),
        )


def check_party(
    *,
    establishment: Establishment,
    connection: Connection,
    lead: VisitorProfile,
    day: date,
    profile_ids: Iterable[int],
    dependant_ids: Iterable[int],
) -> Party:
    """Every visitor in the lead's own party (their group and dependants) and approved
    for this prisoner; the numbers and the adult rule."""
    check_lead_visitor(connection, lead)
    wanted_profiles = {int(pk) for pk in profile_ids} - {lead.pk}
    wanted_dependants = {int(pk) for pk in dependant_ids}
    # Only the lead's own group: a profile id from anywhere else (a tampered form) is
    # refused with the same words as someone not approved yet, so that the answer
    # says nothing about whether that person exists or visits this prisoner.
    others = (
        list(group_companions(lead.pk, connection.prisoner_id).filter(pk__in=wanted_profiles))
        if wanted_profiles
        else []
    )
    dependants = list(
        Dependant.objects.filter(
            pk__in=wanted_dependants, lead_visitor=lead, status=ReviewStatus.APPROVED
        )
    )
    if len(others) != len(wanted_profiles) or len(dependants) != len(wanted_dependants):
        raise BookingRefused(
            RuleCode.VISITOR_NOT_APPROVED,
            _(
                "Everyone on the call must be in your group (or one of your children and others "
                "you added) and approved to call this person. Remove anyone who is not, or "
                "wait until the prison approves them."
            ),
        )
    people: list[VisitorProfile | Dependant] = [lead, *others, *dependants]
    adults = sum(1 for person in people if person.age_on(day) >= establishment.adult_age)
    if len(people) > establishment.max_visitors or adults > establishment.max_adults:
        raise BookingRefused(
            RuleCode.TOO_MANY_VISITORS,
            _(
                "At most %(max_visitors)s people can join a call, and at most %(max_adults)s of "
                "them aged %(adult_age)s or over. Choose fewer people."
            )
            % {
                "max_visitors": establishment.max_visitors,
                "max_adults": establishment.max_adults,
                "adult_age": establishment.adult_age,
            },
        )
    if adults == 0:
        raise BookingRefused(
            RuleCode.NO_ADULT,
            _(
                "At least one person on the call must be aged %(adult_age)s or over on the day. "
                "Add an adult who is approved for this call."
            )
            % {"adult_age": establishment.adult_age},
        )
    return Party(lead=lead, others=others, dependants=dependants)


def _lock(establishment: Establishment, prisoner: Prisoner, slot: Slot) -> list[int]:
    """Lock the prisoner and the slot; the ids of the establishment's active terminals."""
    lock_for_booking(prisoner_ids=[prisoner.pk], slots=[(establishment.pk, slot.starts_at)])
    # The terminals themselves are not what is locked (the slot is): the active ones
    # read with the slot are as good as a second read here.
    return list(slot.terminal_ids)


def _booking_save(
    *,
    establishment: Establishment,
    prisoner: Prisoner,
    terminal: Terminal,
    lead: VisitorProfile,
    connection: Connection,
    slot: Slot,
    month: date,
    status: str,
    origin: str,
    idempotency_key: str | None,
    actor: User | AnonymousUser | None,
    **fields: object,
) -> Booking:
    """Write a booking that has passed every rule, under the locks already taken.

    The database constraints are left to the database (they back up the locks)."""
    booking = Booking(
        establishment=establishment,
        prisoner=prisoner,
        terminal=terminal,
        lead_visitor=lead,
        connection=connection,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        terminal_free_at=slot.ends_at + changeover(establishment),
        allowance_month=month,
        status=status,
        origin=origin,
        idempotency_key=idempotency_key or None,
        created_by=_user(actor),
        **fields,
    )
    # The related rows were just read (and the prisoner locked): checking that each
    # still exists would cost six queries, and the foreign keys guarantee it anyway.
    booking.full_clean(
        exclude=[
            "establishment",
            "prisoner",
            "terminal",
            "lead_visitor",
            "connection",
            "created_by",
        ],
        validate_unique=False,
        validate_constraints=False,
    )
    booking.save()
    return booking


def _reserve_terminal(
    *,
    establishment: Establishment,
    prisoner: Prisoner,
    slot: Slot,
    terminal_ids: list[int] | None = None,
    exclude_booking_id: int | None = None,
    prefer_terminal_id: int | None = None,
) -> tuple[Terminal, date]:
    """Under the lock: the prisoner is free, has allowance, and a terminal is free."""
    if terminal_ids is None:
        terminal_ids = _lock(establishment, prisoner, slot)
    free, month = _free_terminals(
        establishment=establishment,
        prisoner=prisoner,
        slot=slot,
        terminal_ids=terminal_ids,
        exclude_booking_id=exclude_booking_id,
    )
    chosen = prefer_terminal_id if prefer_terminal_id in free else free[0]
    # No fetch needed: the id was just read and locked.
    return Terminal(pk=chosen, establishment=establishment), month


def _free_terminals(
    *,
    establishment: Establishment,
    prisoner: Prisoner,
    slot: Slot,
    terminal_ids: list[int],
    exclude_booking_id: int | None = None,
) -> tuple[list[int], date]:
    """The prisoner is free, has allowance, and a terminal is free: the free terminals
    and the allowance month. Binding only under the locks (_reserve_terminal)."""
    month = slot.local_start.date().replace(day=1)
    busy: set[int] = set()
    prisoner_busy, used = False, 0
    for (
        prisoner_id,
        terminal_id,
        prisoner_overlap,
        terminal_overlap,
        counts,
    ) in _slot_and_month_rows(
        prisoner_id=prisoner.pk,
        slot=slot,
        month=month,
        terminal_ids=terminal_ids,
        exclude_booking_id=exclude_booking_id,
        changeover=changeover(establishment),
    ):
        if terminal_overlap and terminal_id is not None:
            busy.add(terminal_id)
        if prisoner_overlap and prisoner_id == prisoner.pk:
            prisoner_busy = True
        if counts:
            used += 1
    if prisoner_busy:
        raise BookingRefused(
            RuleCode.ALREADY_BOOKED,
            _("%(prison_number)s already has a call at %(slot_label)s. Choose another time.")
            % {"prison_number": prisoner.prison_number, "slot_label": slot_label(slot.local_start)},
        )
    if used >= establishment.calls_per_month:
        raise _no_allowance(establishment, prisoner, month)
    free = [pk for pk in terminal_ids if pk not in busy]
    if not free:
        raise BookingRefused(
            RuleCode.SLOT_FULL,
            _("Every call at %(slot_label)s has just been booked. Choose another time.")
            % {"slot_label": slot_label(slot.local_start)},
        )
    return free, month


def _no_allowance(establishment: Establishment, prisoner: Prisoner, month: date) -> BookingRefused:
    """The month's calls are used: when the next one can be booked. The next month may
    not be in the booking window yet: then the day it comes into it."""
    allowed = establishment.calls_per_month
    used = ngettext(
        "%(number)s has already had or booked %(count)d call in %(month)s.",
        "%(number)s has already had or booked %(count)d calls in %(month)s.",
        allowed,
    ) % {"number": prisoner.prison_number, "count": allowed, "month": month_label(month)}
    after = next_month(month)
    last_day = booking_window(establishment)[1]
    if after <= last_day:
        then = _("Your next call with %(number)s can be booked for any day from %(day)s.") % {
            "number": prisoner.prison_number,
            "day": day_label(after),
        }
    else:
        then = _("Calls in %(month)s can be booked from %(day)s (up to %(days)d days ahead).") % {
            "month": month_label(after),
            "day": day_label(after - timedelta(days=establishment.max_days_ahead)),
            "days": establishment.max_days_ahead,
        }
    return BookingRefused(RuleCode.NO_ALLOWANCE, f"{used} {then}")


@functools.cache
def _slot_and_month_sql(terminals: int, exclude: bool) -> str:
    """The SQL of _slot_and_month_rows for ``terminals`` terminal ids.

    Plain SQL: every booking page asks this, and the ORM's version (OR'd conditions)
    took 0.7 ms of CPU to compile each time, seven times what running it costs. Table
    and column names come from the model; values are parameters; double-quoted
    identifiers are standard SQL (PostgreSQL and SQLite)."""
    column = {f.name: f'"{f.column}"' for f in Booking._meta.concrete_fields}
    status, starts, ends = column["status"], column["starts_at"], column["ends_at"]
    free_at = column["terminal_free_at"]
    prisoner, terminal, month = column["prisoner"], column["terminal"], column["allowance_month"]

    def listed(count: int) -> str:
        return "(" + ", ".join(["%s"] * count) + ")"

    active, allowance = listed(len(ACTIVE_STATUSES)), listed(len(ALLOWANCE_STATUSES))
    # The prisoner is busy during another call; a laptop until its changeover is over,
    # and the new call's own changeover must be over before the laptop's next call.
    prisoner_busy = f"{status} IN {active} AND {starts} < %s AND {ends} > %s"
    terminal_busy = f"{status} IN {active} AND {starts} < %s AND {free_at} > %s"
    counts = f"{prisoner} = %s AND {month} = %s AND {status} IN {allowance}"
    on_terminals = f"{terminal} IN {listed(terminals)}" if terminals else "1 = 0"
    return (
        f"SELECT {prisoner}, {terminal}, "  # noqa: S608
        f"CASE WHEN {prisoner_busy} THEN 1 ELSE 0 END, "
        f"CASE WHEN {terminal_busy} THEN 1 ELSE 0 END, "
        f"CASE WHEN {counts} THEN 1 ELSE 0 END "
        f'FROM "{Booking._meta.db_table}" '
        f"WHERE (({prisoner} = %s AND {prisoner_busy}) OR ({on_terminals} AND {terminal_busy}) "
        f"OR ({counts}))" + (f' AND "{Booking._meta.pk.column}" <> %s' if exclude else "")
    )


def changeover(establishment: Establishment) -> timedelta:
    return timedelta(minutes=establishment.changeover_minutes)


def _slot_and_month_rows(
    *,
    prisoner_id: int,
    slot: Slot,
    month: date,
    terminal_ids: Sequence[int],
    exclude_booking_id: int | None,
    changeover: timedelta = timedelta(0),
) -> list[tuple[int, int | None, bool, bool, bool]]:
    """One read for the three questions of a booking: the prisoner's active bookings
    overlapping ``slot``, the active bookings on these terminals too close to it (the
    ``changeover`` after each call is the laptop's too), and the prisoner's bookings
    that count for ``month``. Rows of (prisoner id, terminal id, the prisoner is busy,
    the terminal is busy, counts for the month's allowance)."""
    ops = database.ops
    starts_at = ops.adapt_datetimefield_value(slot.starts_at)
    ends_at = ops.adapt_datetimefield_value(slot.ends_at)
    ends_with_changeover = ops.adapt_datetimefield_value(slot.ends_at + changeover)
    first_of_month = ops.adapt_datefield_value(month)
    active = [status.value for status in ACTIVE_STATUSES]
    prisoner_busy = [*active, ends_at, starts_at]
    terminal_busy = [*active, ends_with_changeover, starts_at]
    counts = [prisoner_id, first_of_month, *(status.value for status in ALLOWANCE_STATUSES)]
    params = [
        *prisoner_busy,
        *terminal_busy,
        *counts,
        prisoner_id,
        *prisoner_busy,
        *terminal_ids,
        *terminal_busy,
        *counts,
    ]
    if exclude_booking_id is not None:
        params.append(exclude_booking_id)
    sql = _slot_and_month_sql(len(terminal_ids), exclude_booking_id is not None)
    with database.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            (prisoner, terminal, bool(p_busy), bool(t_busy), bool(counts_for_month))
            for prisoner, terminal, p_busy, t_busy, counts_for_month in cursor.fetchall()
        ]


def _refusal_from_integrity_error(exc: IntegrityError) -> BookingRefused:
    text = str(exc)
    if "prisoner" in text:
        return BookingRefused(
            RuleCode.ALREADY_BOOKED,
            _("This person already has a call at that time. Choose another time."),
        )
    return BookingRefused(
        RuleCode.SLOT_FULL,
        _("That time has just been booked by someone else. Choose another time."),
    )


def _existing_for_key(key: str | None, lead: VisitorProfile) -> Booking | None:
    if not key:
        return None
    existing = Booking.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.lead_visitor_id != lead.pk:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("This booking form has expired. Please start again.")
        )
    return existing


# --- Family bookings -------------------------------------------------------------------


def booking_create(
    *,
    connection: Connection,
    lead: VisitorProfile,
    starts_at: datetime,
    profile_ids: Sequence[int] = (),
    dependant_ids: Sequence[int] = (),
    aup_accepted: bool,
    idempotency_key: str | None = None,
    establishment: Establishment | None = None,
    actor: Actor = None,
    now: datetime | None = None,
) -> Booking:
    """A family books a call at ``establishment`` (the portal's; by default the
    prisoner's). The same idempotency key returns the same booking.

    The key is looked up only when the booking is refused: a repeated or double-clicked
    form is refused as "already booked" once its first booking exists (the second
    click waits on the lock until the first commits), and that booking is the answer.
    A lookup on every booking, inside the lock, made every family booking the same
    slot wait longer."""
    for attempt in range(REFERENCE_ATTEMPTS):
        try:
            return _booking_create(
                connection=connection,
                lead=lead,
                starts_at=starts_at,
                profile_ids=profile_ids,
                dependant_ids=dependant_ids,
                aup_accepted=aup_accepted,
                idempotency_key=idempotency_key,
                establishment=establishment,
                actor=actor,
                now=now or timezone.now(),
            )
        except BookingRefused:
            existing = _existing_for_key(idempotency_key, lead)
            if existing is not None:
                return existing
            raise
        except IntegrityError as exc:
            if _reference_taken(exc) and attempt + 1 < REFERENCE_ATTEMPTS:
                continue  # rolled back whole: try again with another reference
            existing = _existing_for_key(idempotency_key, lead)
            if existing is not None:
                return existing
            raise _refusal_from_integrity_error(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


# A new short reference that is already taken (about one booking in 10^5 when there are
# a million) rolls the booking back; it is tried again with another reference. The
# unique constraint is what makes references unique, whatever the concurrency.
REFERENCE_ATTEMPTS = 3


def _reference_taken(exc: IntegrityError) -> bool:
    return "short_reference" in str(exc)


def check_bookable(
    *,
    connection: Connection,
    lead: VisitorProfile,
    starts_at: datetime,
    establishment: Establishment,
    now: datetime,
) -> Slot:
    """Every rule a family can be told about before confirming, without locks.

    The booking page asks first, so that a full slot or a used allowance is said at
    once instead of after the form (booking_create checks everything again under the
    locks: this answer can be stale by the time the family confirms)."""
    check_establishment_live(establishment)
    check_lead_visitor(connection, lead)
    if establishment.request_mode == RequestMode.PRISONER:
        raise _requests_only(establishment)
    prisoner = connection.prisoner
    day = timezone.localtime(starts_at, establishment.tz).date()
    check_prisoner_available(prisoner, establishment, day)
    slot = check_slot(establishment, starts_at, now=now, blocked_from_cache=True)
    _free_terminals(
        establishment=establishment, prisoner=prisoner, slot=slot, terminal_ids=slot.terminal_ids
    )
    return slot


def _requests_only(establishment: Establishment) -> BookingRefused:
    return BookingRefused(
        RuleCode.REQUESTS_ONLY,
        _(
            "At %(name)s the person in prison asks for calls. When they do, you will get an email "
            "and can accept the call on your calls page."
        )
        % {"name": establishment.name},
    )


@transaction.atomic
def _booking_create(
    *,
    connection: Connection,
    lead: VisitorProfile,
    starts_at: datetime,
    profile_ids: Sequence[int],
    dependant_ids: Sequence[int],
    aup_accepted: bool,
    idempotency_key: str | None,
    establishment: Establishment | None,
    actor: Actor,
    now: datetime,
) -> Booking:
    prisoner = connection.prisoner  # the views select it with the connection
    establishment = establishment or prisoner.establishment
    check_establishment_live(establishment)
    check_lead_visitor(connection, lead)
    if establishment.request_mode == RequestMode.PRISONER:
        raise _requests_only(establishment)
    day = timezone.localtime(starts_at, establishment.tz).date()
    check_prisoner_available(prisoner, establishment, day)
    slot = check_slot(establishment, starts_at, now=now)
    party = check_party(
        establishment=establishment,
        connection=connection,
        lead=lead,
        day=day,
        profile_ids=profile_ids,
        dependant_ids=dependant_ids,
    )
    if not aup_accepted:
        raise BookingRefused(
            RuleCode.AUP_NOT_ACCEPTED,
            _("You need to accept the acceptable use policy before booking a call."),
        )
    terminal_ids = _lock(establishment, prisoner, slot)
    terminal, month = _reserve_terminal(
        establishment=establishment, prisoner=prisoner, slot=slot, terminal_ids=terminal_ids
    )
    booking = _booking_save(
        establishment=establishment,
        prisoner=prisoner,
        terminal=terminal,
        lead=lead,
        connection=connection,
        slot=slot,
        month=month,
        status=BookingStatus.CONFIRMED,
        origin=BookingOrigin.FAMILY,
        idempotency_key=idempotency_key,
        actor=actor,
        aup_accepted_at=now,
    )
    _add_party(booking, party, new=True)
    notifications.queue_booking_email(booking.pk, notifications.CONFIRMED)
    return booking


def _add_party(booking: Booking, party: Party, *, new: bool = False) -> None:
    if not new:
        BookingVisitor.objects.filter(booking=booking).delete()
    BookingVisitor.objects.bulk_create(
        [BookingVisitor(booking=booking, profile=party.lead)]
        + [BookingVisitor(booking=booking, profile=p) for p in party.others]
        + [BookingVisitor(booking=booking, dependant=d) for d in party.dependants]
    )


@transaction.atomic
def booking_cancel_by_family(
    *, booking: Booking, lead: VisitorProfile, now: datetime | None = None
) -> Booking:
    """The lead visitor cancels any time before the call starts; the allowance comes back."""
    now = now or timezone.now()
    if booking.lead_visitor_id != lead.pk:
        raise BookingRefused(RuleCode.NOT_CHANGEABLE, _("Only the person who booked can cancel."))
    if booking.starts_at <= now:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("This call has already started, so it cannot be cancelled.")
        )
    _cancel(booking, reason=CancelReason.FAMILY, note="", by=lead.user, now=now)
    return booking


def _cancel(booking: Booking, *, reason: str, note: str, by: User | None, now: datetime) -> None:
    changed = Booking.objects.filter(pk=booking.pk, status__in=ACTIVE_STATUSES).update(
        status=BookingStatus.CANCELLED,
        cancelled_at=now,
        cancelled_by=by,
        cancel_reason=reason,
        cancel_note=note[:300],
        calendar_sequence=F("calendar_sequence") + 1,
    )
    if not changed:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("This call has already been cancelled or has taken place.")
        )
    booking.refresh_from_db()
    notifications.queue_booking_email(booking.pk, notifications.CANCELLED)


# --- Prisoner requests -------------------------------------------------------------------


def booking_request_create(
    *,
    connection: Connection,
    starts_at: datetime,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """A visits admin enters a prisoner's request for a call with one visitor.

    A short reference that is already taken rolls the request back and it is tried
    again with another, as booking_create does."""
    for attempt in range(REFERENCE_ATTEMPTS):
        try:
            return _booking_request_create(
                connection=connection,
                starts_at=starts_at,
                actor=actor,
                idempotency_key=idempotency_key,
                now=now or timezone.now(),
            )
        except IntegrityError as exc:
            if _reference_taken(exc) and attempt + 1 < REFERENCE_ATTEMPTS:
                continue
            lead = VisitorProfile.objects.get(pk=connection.visitor_id)
            existing = _existing_for_key(idempotency_key, lead)
            if existing is not None:
                return existing
            raise _refusal_from_integrity_error(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


@transaction.atomic
def _booking_request_create(
    *,
    connection: Connection,
    starts_at: datetime,
    actor: Actor,
    idempotency_key: str | None,
    now: datetime,
) -> Booking:
    lead = VisitorProfile.objects.get(pk=connection.visitor_id)
    existing = _existing_for_key(idempotency_key, lead)
    if existing is not None:
        return existing
    prisoner = Prisoner.objects.select_related("establishment").get(pk=connection.prisoner_id)
    establishment = prisoner.establishment
    check_establishment_live(establishment)
    check_lead_visitor(connection, lead)
    day = timezone.localtime(starts_at, establishment.tz).date()
    check_prisoner_available(prisoner, establishment, day)
    slot = check_slot(establishment, starts_at, now=now)
    terminal, month = _reserve_terminal(establishment=establishment, prisoner=prisoner, slot=slot)
    expires = min(now + timedelta(hours=establishment.request_response_hours), slot.starts_at)
    booking = _booking_save(
        establishment=establishment,
        prisoner=prisoner,
        terminal=terminal,
        lead=lead,
        connection=connection,
        slot=slot,
        month=month,
        status=BookingStatus.REQUESTED,
        origin=BookingOrigin.PRISONER,
        idempotency_key=idempotency_key,
        actor=actor,
        request_expires_at=expires,
    )
    BookingVisitor.objects.create(booking=booking, profile=lead)
    audit_record(
        actor=actor,
        action=AuditAction.BOOKING_CREATE,
        establishment=establishment,
        target=booking,
        detail={"reference": str(booking.reference), "starts_at": slot.key},
    )
    notifications.queue_booking_email(booking.pk, notifications.REQUESTED)
    return booking


@transaction.atomic
def booking_request_accept(
    *,
    booking: Booking,
    lead: VisitorProfile,
    profile_ids: Sequence[int] = (),
    dependant_ids: Sequence[int] = (),
    aup_accepted: bool,
    now: datetime | None = None,
) -> Booking:
    now = now or timezone.now()
    booking = Booking.objects.select_related("establishment", "connection", "prisoner").get(
        pk=booking.pk
    )
    _check_request_open(booking, lead, now)
    establishment = booking.establishment
    day = timezone.localtime(booking.starts_at, establishment.tz).date()
    check_prisoner_available(booking.prisoner, establishment, day)
    party = check_party(
        establishment=establishment,
        connection=booking.connection,
        lead=lead,
        day=day,
        profile_ids=profile_ids,
        dependant_ids=dependant_ids,
    )
    if not aup_accepted:
        raise BookingRefused(
            RuleCode.AUP_NOT_ACCEPTED,
            _("You need to accept the acceptable use policy before accepting the call."),
        )
    changed = Booking.objects.filter(
        pk=booking.pk, status=BookingStatus.REQUESTED, request_expires_at__gt=now
    ).update(status=BookingStatus.CONFIRMED, aup_accepted_at=now)
    if not changed:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("This request has lapsed or has already been answered.")
        )
    _add_party(booking, party)
    booking.refresh_from_db()
    notifications.queue_booking_email(booking.pk, notifications.CONFIRMED)
    return booking


@transaction.atomic
def booking_request_decline(
    *, booking: Booking, lead: VisitorProfile, now: datetime | None = None
) -> Booking:
    now = now or timezone.now()
    _check_request_open(booking, lead, now)
    _cancel(booking, reason=CancelReason.REQUEST_DECLINED, note="", by=lead.user, now=now)
    return booking


def _check_request_open(booking: Booking, lead: VisitorProfile, now: datetime) -> None:
    if booking.lead_visitor_id != lead.pk:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("Only the person the call was requested with can answer it.")
        )
    expires = booking.request_expires_at
    if booking.status != BookingStatus.REQUESTED or expires is None or expires <= now:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("This request has lapsed or has already been answered.")
        )


def booking_requests_lapse(*, now: datetime | None = None) -> int:
    """Cancel requests nobody answered in time. Idempotent: a lapsed request stays lapsed."""
    now = now or timezone.now()
    lapsed = 0
    due = Booking.objects.filter(
        status=BookingStatus.REQUESTED, request_expires_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            changed = Booking.objects.filter(
                pk=pk, status=BookingStatus.REQUESTED, request_expires_at__lte=now
            ).update(
                status=BookingStatus.CANCELLED,
                cancelled_at=now,
                cancel_reason=CancelReason.REQUEST_LAPSED,
                calendar_sequence=F("calendar_sequence") + 1,
            )
            if changed:
                lapsed += 1
                notifications.queue_booking_email(pk, notifications.CANCELLED)
    return lapsed


# --- Staff actions ---------------------------------------------------------------------


@transaction.atomic
def booking_cancel_by_staff(
    *, booking: Booking, actor: Actor, reason: str, note: str = "", now: datetime | None = None
) -> Booking:
    now = now or timezone.now()
    if reason not in STAFF_CANCEL_REASONS:
        raise ValidationError({"reason": _("Choose a reason for cancelling.")})
    if reason == CancelReason.OTHER and not note.strip():
        raise ValidationError({"note": _("Say why the call is cancelled.")})
    if booking.starts_at <= now:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE,
            _("This call has already started: end it from the monitoring page instead."),
        )
    _cancel(booking, reason=reason, note=note.strip(), by=_user(actor), now=now)
    audit_record(
        actor=actor,
        action=AuditAction.BOOKING_CANCEL,
        establishment=booking.establishment,
        target=booking,
        reason=f"{CancelReason(reason).label}{': ' + note.strip() if note.strip() else ''}",
        detail={"reference": str(booking.reference)},
    )
    return booking


def booking_move(
    *,
    booking: Booking,
    starts_at: datetime,
    actor: Actor,
    reason: str,
    note: str = "",
    now: datetime | None = None,
) -> Booking:
    """A visits admin moves a call to another offered slot (any future day in the
    window, without the families' notice). The reason is required (``note`` too for
    "Other"); the family's email says the old time and the reason; audited."""
    if reason not in MoveReason.values:
        raise ValidationError({"reason": _("Choose a reason for moving the call.")})
    note = note.strip()
    if reason == MoveReason.OTHER and not note:
        raise ValidationError({"note": _("Say why the call is moved.")})
    return _with_constraint_refusals(
        lambda: _booking_move_by_staff(
            booking=booking,
            starts_at=starts_at,
            actor=actor,
            reason=reason,
            note=note,
            now=now or timezone.now(),
        )
    )


def move_reason_text(reason: str, note: str) -> str:
    """'Staff shortage – the note', as the family's email and the audit log say it."""
    label = str(MoveReason(reason).label)
    return f"{label} – {note}" if note else label


@transaction.atomic
def _booking_move_by_staff(
    *, booking: Booking, starts_at: datetime, actor: Actor, reason: str, note: str, now: datetime
) -> Booking:
    booking = Booking.objects.select_related("establishment", "prisoner").get(pk=booking.pk)
    if booking.status not in ACTIVE_STATUSES or booking.starts_at <= now:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("Only a call that has not started yet can be moved.")
        )
    establishment = booking.establishment
    day = timezone.localtime(starts_at, establishment.tz).date()
    check_prisoner_available(booking.prisoner, establishment, day)
    slot = check_slot(establishment, starts_at, now=now, enforce_notice=False)
    if slot.starts_at == booking.starts_at:
        raise BookingRefused(RuleCode.SLOT_NOT_OFFERED, _("The call is already at that time."))
    old = _move_to(booking, slot, statuses=ACTIVE_STATUSES)
    audit_record(
        actor=actor,
        action=AuditAction.BOOKING_MOVE,
        establishment=establishment,
        target=booking,
        reason=f"{MoveReason(reason).label}{': ' + note if note else ''}",
        detail={
            "reference": str(booking.reference),
            "from": old.isoformat(),
            "to": slot.starts_at.isoformat(),
        },
    )
    notifications.queue_booking_email(
        booking.pk,
        notifications.MOVED,
        previous_starts_at=old,
        reason=move_reason_text(reason, note),
    )
    return booking


def _move_to(booking: Booking, slot: Slot, *, statuses: Sequence[str]) -> datetime:
    """Lock the prisoner and the new slot, check them without ``booking`` itself (its
    own month's call is not used twice, its laptop is free to take again), and move it
    there; the old start. The update is conditional on the booking being where it was
    read: a change that committed meanwhile (a cancellation, another move from a second
    tab) makes this one a refusal instead of being undone."""
    establishment = booking.establishment
    terminal, month = _reserve_terminal(
        establishment=establishment,
        prisoner=booking.prisoner,
        slot=slot,
        exclude_booking_id=booking.pk,
        prefer_terminal_id=booking.terminal_id,
    )
    old = booking.starts_at
    changed = Booking.objects.filter(pk=booking.pk, status__in=statuses, starts_at=old).update(
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        terminal_free_at=slot.ends_at + changeover(establishment),
        terminal=terminal,
        allowance_month=month,
        reminder_24h_sent_at=None,
        reminder_1h_sent_at=None,
        calendar_sequence=F("calendar_sequence") + 1,
    )
    if not changed:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE,
            _("This call was changed or cancelled a moment ago: look at it again first."),
        )
    booking.refresh_from_db()
    return old


def _with_constraint_refusals(write: Callable[[], Booking]) -> Booking:
    """Run a write transaction; a database constraint it broke (the locks make that a
    backstop only) becomes the refusal the family would have had from the check."""
    try:
        return write()
    except IntegrityError as exc:
        raise _refusal_from_integrity_error(exc) from exc


def _check_family_move(
    *, booking: Booking, lead: VisitorProfile, starts_at: datetime, now: datetime, cached: bool
) -> tuple[Slot, Party]:
    """Every rule of booking_create, for ``booking`` at ``starts_at`` instead: the
    booking is the lead's and still to come; the establishment, the connection, the
    prisoner, the slot (with the families' notice) and the party on the new day."""
    if booking.lead_visitor_id != lead.pk:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE, _("Only the person who booked the call can change its time.")
        )
    if booking.status != BookingStatus.CONFIRMED or booking.starts_at <= now:
        raise BookingRefused(
            RuleCode.NOT_CHANGEABLE,
            _("Only a booked call that has not started yet can be moved."),
        )
    establishment = booking.establishment
    check_establishment_live(establishment)
    check_lead_visitor(booking.connection, lead)
    if establishment.request_mode == RequestMode.PRISONER:
        raise _requests_only(establishment)
    day = timezone.localtime(starts_at, establishment.tz).date()
    check_prisoner_available(booking.prisoner, establishment, day)
    slot = check_slot(establishment, starts_at, now=now, blocked_from_cache=cached)
    if slot.starts_at == booking.starts_at:
        raise BookingRefused(
            RuleCode.SLOT_NOT_OFFERED, _("Your call is already at that time. Choose another time.")
        )
    people = list(booking.visitors.values_list("profile_id", "dependant_id"))
    party = check_party(
        establishment=establishment,
        connection=booking.connection,
        lead=lead,
        day=day,
        profile_ids=[p for p, _d in people if p is not None],
        dependant_ids=[d for _p, d in people if d is not None],
    )
    return slot, party


def check_movable(
    *, booking: Booking, lead: VisitorProfile, starts_at: datetime, now: datetime
) -> Slot:
    """What booking_move_by_family would answer, without locks (the confirmation page
    asks first; the move checks everything again under the locks)."""
    booking = _booking_to_move(booking)
    slot, _party = _check_family_move(
        booking=booking, lead=lead, starts_at=starts_at, now=now, cached=True
    )
    _free_terminals(
        establishment=booking.establishment,
        prisoner=booking.prisoner,
        slot=slot,
        terminal_ids=slot.terminal_ids,
        exclude_booking_id=booking.pk,
    )
    return slot


def _booking_to_move(booking: Booking) -> Booking:
    return Booking.objects.select_related(
        "establishment", "prisoner", "connection", "lead_visitor"
    ).get(pk=booking.pk)


def booking_move_by_family(
    *,
    booking: Booking,
    lead: VisitorProfile,
    starts_at: datetime,
    now: datetime | None = None,
) -> Booking:
    """The lead visitor moves their call to another free slot: the rules of a new
    booking, in one transaction, under the same locks (the prisoner, then the new
    slot); the call keeps its people, its policy acceptance and its reference, and
    uses no more of the allowance (a move into another month counts there instead)."""
    return _with_constraint_refusals(
        lambda: _booking_move_by_family(
            booking=booking, lead=lead, starts_at=starts_at, now=now or timezone.now()
        )
    )


@transaction.atomic
def _booking_move_by_family(
    *, booking: Booking, lead: VisitorProfile, starts_at: datetime, now: datetime
) -> Booking:
    booking = _booking_to_move(booking)
    slot, _party = _check_family_move(
        booking=booking, lead=lead, starts_at=starts_at, now=now, cached=False
    )
    old = _move_to(booking, slot, statuses=(BookingStatus.CONFIRMED,))
    notifications.queue_booking_email(
        booking.pk, notifications.MOVED_BY_FAMILY, previous_starts_at=old
    )
    return booking


@transaction.atomic
def blocked_date_add(
    *,
    establishment: Establishment,
    day: date,
    reason: str,
    note: str = "",
    actor: Actor,
) -> tuple[BlockedDate, list[Booking]]:
    """Block a day: it offers no slots, and the calls already on it are cancelled."""
    blocked = BlockedDate(establishment=establishment, date=day, reason=reason, note=note.strip())
    blocked.full_clean()
    blocked.save()
    cancelled = blocked_date_apply(blocked_date=blocked, actor=actor)
    return blocked, cancelled


@transaction.atomic
def blocked_date_apply(
    *, blocked_date: BlockedDate, actor: Actor, now: datetime | None = None
) -> list[Booking]:
    """Cancel the active calls on a blocked day (allowance back, families told)."""
    from bookings.selectors import active_bookings_on

    now = now or timezone.now()
    establishment = blocked_date.establishment
    reason = BLOCKED_DATE_CANCEL_REASON.get(blocked_date.reason, CancelReason.OTHER)
    note = blocked_date.note or blocked_date.get_reason_display()
    cancelled: list[Booking] = []
    for booking in active_bookings_on(establishment, blocked_date.date).order_by("pk"):
        if booking.starts_at <= now:
            continue  # already under way: ending it is for the monitoring page
        try:
            _cancel(booking, reason=reason, note=note, by=_user(actor), now=now)
        except BookingRefused:
            continue  # cancelled meanwhile
        cancelled.append(booking)
    audit_record(
        actor=actor,
        action=AuditAction.BLOCKED_DATE_ADD,
        establishment=establishment,
        target=blocked_date,
        reason=": ".join(filter(None, [blocked_date.get_reason_display(), blocked_date.note])),
        detail={
            "date": blocked_date.date.isoformat(),
            "cancelled": [str(b.reference) for b in cancelled],
        },
    )
    return cancelled


# --- Reminders -------------------------------------------------------------------------


def booking_reminders_send(*, now: datetime | None = None) -> dict[str, int]:
    """Queue the 24-hour and 1-hour reminders that are due. Each is sent once."""
    now = now or timezone.now()
    sent = {"24h": 0, "1h": 0}
    plans = (
        ("24h", "reminder_24h_sent_at", timedelta(hours=24), timedelta(hours=1)),
        ("1h", "reminder_1h_sent_at", timedelta(hours=1), timedelta(0)),
    )
    for label, field_name, before, until in plans:
        due = Booking.objects.filter(
            status=BookingStatus.CONFIRMED,
            starts_at__lte=now + before,
            starts_at__gt=now + until,
            **{f"{field_name}__isnull": True},
        ).values_list("pk", flat=True)
        for pk in list(due):
            with transaction.atomic():
                claimed = Booking.objects.filter(
                    pk=pk, status=BookingStatus.CONFIRMED, **{f"{field_name}__isnull": True}
                ).update(**{field_name: now})
                if claimed:
                    sent[label] += 1
                    notifications.queue_booking_email(
                        pk,
                        notifications.REMINDER_24H if label == "24h" else notifications.REMINDER_1H,
                    )
    return sent
