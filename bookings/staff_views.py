"""Staff pages: the day and week per terminal, cancel, move, block dates, enter requests.

Officers may look at the day and week lists (they run the calls) but change nothing;
every change needs a visits admin at that establishment and is audited by the service.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from bookings import selectors, services
from bookings.forms import (
    BlockedDateForm,
    PrisonerLookupForm,
    PrisonerRequestForm,
    RequestFilterForm,
    StaffCancelForm,
    StaffMoveForm,
    new_idempotency_key,
)
from bookings.models import ACTIVE_STATUSES, Booking
from bookings.rules import BookingRefused
from establishments.models import BlockedDate, Establishment, Prisoner, StaffRole, Terminal
from establishments.permissions import role_required
from establishments.selectors import has_role_at
from identity.models import Connection, ConnectionStatus


def _day_param(request: HttpRequest, establishment: Establishment, name: str) -> date:
    today = timezone.localtime(timezone.now(), establishment.tz).date()
    raw = request.GET.get(name, "")
    try:
        return date.fromisoformat(raw) if raw else today
    except ValueError:
        return today


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's ValidationError shown by its field (or at the top of the form)."""
    for field, messages_ in error.message_dict.items():
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


@role_required(StaffRole.OFFICER)
def day(request: HttpRequest, *, establishment: Establishment) -> HttpResponse:
    """The day sheet; with ``ref`` (a booking's short reference, any case, with or
    without the dash) the day of that booking here, the booking marked."""
    the_day = _day_param(request, establishment, "date")
    ref = request.GET.get("ref", "").strip()[:20]
    found = selectors.booking_by_short_reference(establishment, ref) if ref else None
    ref_error = ""
    if found is not None:
        the_day = timezone.localtime(found.starts_at, establishment.tz).date()
    elif ref:
        ref_error = _("No booking here has the reference %(ref)s. Check it and try again.") % {
            "ref": ref
        }
    bookings = list(selectors.bookings_between(establishment, the_day, the_day))
    terminals = list(Terminal.objects.filter(establishment=establishment).order_by("name"))
    by_terminal: dict[int, list[Booking]] = defaultdict(list)
    for booking in bookings:
        booking.local_start = timezone.localtime(booking.starts_at, establishment.tz)  # type: ignore[attr-defined]
        booking.local_end = timezone.localtime(booking.ends_at, establishment.tz)  # type: ignore[attr-defined]
        by_terminal[booking.terminal_id].append(booking)
    blocked = BlockedDate.objects.filter(establishment=establishment, date=the_day).first()
    return render(
        request,
        "bookings/staff/day.html",
        {
            "establishment": establishment,
            "day": the_day,
            "previous_day": the_day - timedelta(days=1),
            "next_day": the_day + timedelta(days=1),
            "columns": [(t, by_terminal.get(t.pk, [])) for t in terminals],
            "blocked": blocked,
            "can_manage": has_role_at(request.user, establishment, StaffRole.VISITS_ADMIN),
            "now": timezone.now(),
            "active_statuses": ACTIVE_STATUSES,
            "ref": ref,
            "ref_error": ref_error,
            "found_id": found.pk if found else None,
        },
        status=404 if ref_error else 200,
    )


@role_required(StaffRole.OFFICER)
def week(request: HttpRequest, *, establishment: Establishment) -> HttpResponse:
    start = _day_param(request, establishment, "start")
    start -= timedelta(days=start.weekday())
    days = [start + timedelta(days=n) for n in range(7)]
    terminals = list(Terminal.objects.filter(establishment=establishment).order_by("name"))
    cells: dict[tuple[int, date], list[Booking]] = defaultdict(list)
    for booking in selectors.bookings_between(establishment, days[0], days[-1]):
        if booking.status not in ACTIVE_STATUSES:
            continue
        local = timezone.localtime(booking.starts_at, establishment.tz)
        booking.local_start = local  # type: ignore[attr-defined]
        cells[(booking.terminal_id, local.date())].append(booking)
    blocked = set(
        BlockedDate.objects.filter(
            establishment=establishment, date__gte=days[0], date__lte=days[-1]
        ).values_list("date", flat=True)
    )
    rows = [(t, [(d, cells.get((t.pk, d), [])) for d in days]) for t in terminals]
    return render(
        request,
        "bookings/staff/week.html",
        {
            "establishment": establishment,
            "days": days,
            "rows": rows,
            "blocked": blocked,
            "previous_week": days[0] - timedelta(days=7),
            "next_week": days[0] + timedelta(days=7),
        },
    )


def _booking_here(establishment: Establishment, reference: str) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("prisoner", "lead_visitor", "terminal", "establishment"),
        reference=reference,
        establishment=establishment,
    )


@role_required(StaffRole.VISITS_ADMIN)
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, reference: str, *, establishment: Establishment) -> HttpResponse:
    booking = _booking_here(establishment, reference)
    form = StaffCancelForm(request.POST or None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        try:
            services.booking_cancel_by_staff(
                booking=booking,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        except BookingRefused as exc:
            refusal = exc
        else:
            messages.success(request, _("The call is cancelled and the family has been told."))
            return _back_to_day(establishment, booking)
    return render(
        request,
        "bookings/staff/cancel.html",
        {
            "establishment": establishment,
            "booking": booking,
            "form": form,
            "refusal": refusal,
            "local_start": timezone.localtime(booking.starts_at, establishment.tz),
        },
        status=400 if request.method == "POST" else 200,
    )


def _back_to_day(establishment: Establishment, booking: Booking) -> HttpResponse:
    the_day = timezone.localtime(booking.starts_at, establishment.tz).date()
    response = redirect("bookings:staff_day", code=establishment.code)
    response["Location"] += f"?date={the_day.isoformat()}"
    return response


@role_required(StaffRole.VISITS_ADMIN)
@require_http_methods(["GET", "POST"])
def move(request: HttpRequest, reference: str, *, establishment: Establishment) -> HttpResponse:
    booking = _booking_here(establishment, reference)
    now = timezone.now()
    today = timezone.localtime(now, establishment.tz).date()
    last_day = selectors.booking_window(establishment, now)[1]
    slots = [
        slot
        for slot in selectors.slots_between(
            establishment, today, last_day, exclude_booking_id=booking.pk
        )
        if slot.starts_at > now and slot.free > 0 and slot.starts_at != booking.starts_at
    ]
    form = StaffMoveForm(request.POST or None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        try:
            services.booking_move(
                booking=booking,
                starts_at=form.cleaned_data["slot"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        except BookingRefused as exc:
            refusal = exc
        else:
            messages.success(
                request, _("The call has moved and the family has been told the old time and why.")
            )
            booking.refresh_from_db()
            return _back_to_day(establishment, booking)
    return render(
        request,
        "bookings/staff/move.html",
        {
            "establishment": establishment,
            "booking": booking,
            "form": form,
            "refusal": refusal,
            "slots": slots,
            "local_start": timezone.localtime(booking.starts_at, establishment.tz),
        },
        status=400 if request.method == "POST" else 200,
    )


@role_required(StaffRole.VISITS_ADMIN)
@require_http_methods(["GET", "POST"])
def blocked_dates(request: HttpRequest, *, establishment: Establishment) -> HttpResponse:
    form = BlockedDateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            # Not "_": that name is gettext in this module.
            _blocked, cancelled = services.blocked_date_add(
                establishment=establishment,
                day=form.cleaned_data["date"],
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            count = len(cancelled)
            blocked_day = _("%(date)s is blocked.") % {
                "date": date_format(form.cleaned_data["date"], "j F Y")
            }
            outcome = (
                ngettext(
                    "%(count)s call cancelled and the family told.",
                    "%(count)s calls cancelled and the families told.",
                    count,
                )
                % {"count": count}
                if count
                else _("No calls were booked that day.")
            )
            messages.success(request, f"{blocked_day} {outcome}")
            return redirect("bookings:staff_blocked_dates", code=establishment.code)
    today = timezone.localtime(timezone.now(), establishment.tz).date()
    upcoming = BlockedDate.objects.filter(establishment=establishment, date__gte=today)
    return render(
        request,
        "bookings/staff/blocked_dates.html",
        {"establishment": establishment, "form": form, "blocked": upcoming},
        status=400 if request.method == "POST" else 200,
    )


REQUESTS_LOOK_BACK_DAYS = 28


@role_required(StaffRole.OFFICER)
@require_GET
def requests_list(request: HttpRequest, *, establishment: Establishment) -> HttpResponse:
    """Prisoners' requests and what became of each: waiting, accepted, declined, lapsed.

    Staff tell the prisoner the answer; the family was told by email."""
    form = RequestFilterForm(request.GET or None)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    since = timezone.now() - timedelta(days=REQUESTS_LOOK_BACK_DAYS)
    paginator = Paginator(
        selectors.prisoner_requests(establishment, state=state, since=since),
        selectors.REQUESTS_PER_PAGE,
    )
    page = paginator.get_page(request.GET.get("page"))
    tz = establishment.tz
    for booking in page.object_list:
        booking.state_label = selectors.REQUEST_STATES[booking.request_state]  # type: ignore[attr-defined]
        # In the establishment's time, as every staff page shows it.
        booking.local_start = timezone.localtime(booking.starts_at, tz)  # type: ignore[attr-defined]
        booking.local_entered = timezone.localtime(booking.created_at, tz)  # type: ignore[attr-defined]
        if booking.request_expires_at:
            booking.local_expires = timezone.localtime(booking.request_expires_at, tz)  # type: ignore[attr-defined]
    return render(
        request,
        "bookings/staff/requests.html",
        {
            "establishment": establishment,
            "form": form,
            "page": page,
            "query_string": urlencode({"state": state}) if state else "",
            "look_back_days": REQUESTS_LOOK_BACK_DAYS,
        },
        status=400 if form.errors else 200,
    )


@role_required(StaffRole.VISITS_ADMIN)
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest, *, establishment: Establishment) -> HttpResponse:
    """Enter a prisoner's request: prison number, then the visitor and a slot."""
    data = request.POST if request.method == "POST" else request.GET
    lookup = PrisonerLookupForm(data if "prison_number" in data else None)
    prisoner = None
    connections: list[Connection] = []
    if lookup.is_valid():
        prisoner = Prisoner.objects.filter(
            prison_number=lookup.cleaned_data["prison_number"], establishment=establishment
        ).first()
        if prisoner is None:
            lookup.add_error("prison_number", _("No prisoner with that number is held here."))
        else:
            connections = list(
                Connection.objects.filter(prisoner=prisoner, status=ConnectionStatus.APPROVED)
                .select_related("visitor")
                .order_by("visitor__legal_name")
            )
    choices = [
        (c.pk, f"{c.visitor.legal_name} ({c.get_relationship_display()})") for c in connections
    ]
    form = PrisonerRequestForm(
        request.POST if request.method == "POST" else None,
        connections=choices,
        initial={
            "prison_number": prisoner.prison_number if prisoner else "",
            "idempotency_key": new_idempotency_key(),
        },
    )
    slots = [s for s in selectors.bookable_slots(establishment) if s.free > 0] if prisoner else []
    refusal = None
    if request.method == "POST" and prisoner is not None and form.is_valid():
        connection = next(c for c in connections if c.pk == form.cleaned_data["connection"])
        try:
            booking = services.booking_request_create(
                connection=connection,
                starts_at=form.cleaned_data["slot"],
                actor=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except BookingRefused as exc:
            refusal = exc
        else:
            hours = establishment.request_response_hours
            messages.success(
                request,
                ngettext(
                    "Request entered. %(visitor)s has been emailed and has %(hours)s hour "
                    "to accept.",
                    "Request entered. %(visitor)s has been emailed and has %(hours)s hours "
                    "to accept.",
                    hours,
                )
                % {"visitor": connection.visitor.legal_name, "hours": hours},
            )
            return _back_to_day(establishment, booking)
    return render(
        request,
        "bookings/staff/request_new.html",
        {
            "establishment": establishment,
            "lookup": lookup,
            "prisoner": prisoner,
            "form": form,
            "slots": slots,
            "refusal": refusal,
        },
        status=400 if request.method == "POST" else 200,
    )
