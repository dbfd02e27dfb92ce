"""The family's pages: an establishment's booking portal, booking, their calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from bookings import selectors, services
from bookings.forms import AcceptRequestForm, BookingForm, MoveForm, new_idempotency_key
from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus
from bookings.notifications import booking_ics
from bookings.rules import BookingRefused, RuleCode
from establishments.models import Establishment, RequestMode
from identity.models import Connection, VisitorProfile
from purplevisits.i18n import prefer_welsh_in


def _in_zone(moment: datetime | None, local: selectors.LocalTime, fmt: str) -> str:
    """Formatted here: templates would convert an aware datetime back to UK time."""
    if moment is None or local.zone is None:
        return ""
    return date_format(moment.astimezone(local.zone), fmt)


@dataclass(frozen=True)
class SlotChoice:
    """One slot as the portal lists it: bookable, or why not (``reason``)."""

    key: str  # the form value (UTC start)
    dom_id: str
    times: str  # establishment (UK) time, "09:30–10:00"
    family_time: str  # the family's own time, or ""
    free: int
    reason: str = ""  # why this family cannot book it; "" when they can

    @property
    def bookable(self) -> bool:
        return not self.reason


def _slot_choice(slot: selectors.Slot, local: selectors.LocalTime, reason: str = "") -> SlotChoice:
    key = slot.key
    return SlotChoice(
        key=key,
        dom_id="slot-" + key.replace(":", "").lower(),
        times=f"{slot.local_start:%H:%M}–{slot.local_end:%H:%M}",
        family_time=_in_zone(slot.starts_at, local, "D H:i"),
        free=slot.free,
        reason=reason,
    )


@dataclass(frozen=True)
class MonthLeft:
    allowance: selectors.MonthAllowance
    note: str  # when none is left: when the next call can be booked


def _chosen(connections: list[Connection], value: object) -> Connection | None:
    for connection in connections:
        if str(connection.pk) == str(value):
            return connection
    return connections[0] if connections else None


def portal(request: HttpRequest, code: str) -> HttpResponse:
    """An establishment's own booking page: every slot of the booking window, each
    marked bookable or not (and why) for the family's chosen connection."""
    establishment = get_object_or_404(Establishment, code=code)
    prefer_welsh_in(request, establishment)
    profile = selectors.visitor_profile_for(request.user)
    context: dict[str, object] = {"establishment": establishment, "profile": profile}
    if not establishment.is_live:
        return render(request, "bookings/portal_closed.html", context)
    connections = list(selectors.approved_connections(profile, establishment)) if profile else []
    context["connections"] = connections
    if establishment.request_mode == RequestMode.PRISONER:
        return render(request, "bookings/portal_requests.html", context)
    now = timezone.now()
    # "Change the time" on a call's page: the same list, marked for moving that call.
    moving = (
        selectors.booking_to_move(profile, establishment, request.GET.get("move", ""))
        if profile is not None and request.GET.get("move")
        else None
    )
    slots = selectors.bookable_slots(
        establishment, now=now, exclude_booking_id=moving.pk if moving else None
    )
    local = selectors.family_time_zone(profile, establishment)
    first_day, last_day = selectors.booking_window(establishment, now)
    calls = selectors.prisoner_calls({c.prisoner_id for c in connections}, first_day, last_day)
    allowances = selectors.allowances_for(
        connections, establishment, first_day, last_day, calls=calls
    )
    chosen = _chosen(connections, moving.connection_id if moving else request.GET.get("connection"))
    if moving is not None and (chosen is None or chosen.pk != moving.connection_id):
        moving = None  # the connection is no longer approved: nothing to move with
    # A call being moved is marked by the rules without itself: its own month's call
    # is not used twice, and its own time is not "a call already then".
    marking_calls = [c for c in calls if moving is None or c.booking_id != moving.pk]
    marking_months = (
        selectors.allowances_for([chosen], establishment, first_day, last_day, calls=marking_calls)[
            chosen.pk
        ]
        if moving is not None and chosen is not None
        else (allowances[chosen.pk] if chosen else [])
    )
    marks = selectors.mark_slots(
        slots,
        connection=chosen,
        profile=profile,
        establishment=establishment,
        calls=marking_calls,
        months=marking_months,
        first_day=first_day,
        last_day=last_day,
    )
    if moving is not None:
        marks[selectors.slot_key(moving.starts_at)] = _("your call is at this time now")
    # Labels made here, once per slot, rather than by template filters per slot.
    days = [
        (day, [_slot_choice(slot, local, marks.get(slot.key, "")) for slot in day_slots])
        for day, day_slots in selectors.group_by_day(slots)
    ]
    context.update(
        allowances=[
            (
                c,
                [
                    MonthLeft(
                        m,
                        ""
                        if m.left
                        else selectors.next_call_note(
                            establishment,
                            m.month,
                            allowances[c.pk],
                            first_day=first_day,
                            last_day=last_day,
                        ),
                    )
                    for m in allowances[c.pk]
                ],
            )
            for c in connections
        ],
        days=days,
        any_bookable=any(choice.bookable for _, choices in days for choice in choices),
        local=local,
        first_day=first_day,
        last_day=last_day,
        chosen=chosen,
        can_book=bool(profile and profile.is_approved and connections),
        moving=moving,
        moving_start=timezone.localtime(moving.starts_at, establishment.tz) if moving else None,
    )
    return render(request, "bookings/portal.html", context)


FIXABLE_ON_THE_FORM = frozenset(
    {
        RuleCode.AUP_NOT_ACCEPTED,
        RuleCode.TOO_MANY_VISITORS,
        RuleCode.NO_ADULT,
        RuleCode.VISITOR_NOT_APPROVED,  # someone in the party: take them off
        RuleCode.BUSY,  # lots of people booking: the same form can be sent again
    }
)


def _own_connection(
    profile: VisitorProfile, establishment: Establishment, value: object
) -> Connection:
    """The family's own approved connection at this establishment, or a refusal."""
    try:
        pk = int(str(value))
    except ValueError:
        pk = 0
    connection = (
        selectors.approved_connections(profile, establishment).filter(pk=pk).first()
        if pk > 0
        else None
    )
    if connection is None:
        raise BookingRefused(
            RuleCode.VISITOR_NOT_APPROVED,
            _("You can only book calls with people you have an approved connection to at %(name)s.")
            % {"name": establishment.name},
        )
    return connection


@login_required
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest, code: str) -> HttpResponse:
    """Step 2 of booking: who joins, the acceptable use policy, then confirm."""
    data = request.POST if request.method == "POST" else request.GET
    # The usual case in one query: the family's own approved connection here, with
    # their profile, the prisoner and the establishment.
    own = selectors.own_connection_at(request.user, code, data.get("connection", ""))
    if own is not None:
        establishment, profile = own.prisoner.establishment, own.visitor
        prefer_welsh_in(request, establishment)
    else:
        establishment = get_object_or_404(Establishment, code=code)
        prefer_welsh_in(request, establishment)
        found = selectors.visitor_profile_for(request.user)
        if found is None:
            messages.error(request, _("Set up your account and prove who you are before booking."))
            return redirect("bookings:my_bookings")
        profile = found
    form = BookingForm(
        data if request.method == "POST" else None,
        initial={
            "connection": data.get("connection"),
            "slot": data.get("slot"),
            "idempotency_key": new_idempotency_key(),
        },
    )
    refusal: BookingRefused | None = None
    connection: Connection | None = None
    starts_at = None
    try:
        connection = own or _own_connection(profile, establishment, data.get("connection", ""))
        starts_at = selectors.parse_slot_key(str(data.get("slot", "")))
        if starts_at is None:
            raise BookingRefused(
                RuleCode.SLOT_NOT_OFFERED, _("Choose one of the times on the booking page.")
            )
        if request.method == "GET":
            services.check_bookable(
                connection=connection,
                lead=profile,
                starts_at=starts_at,
                establishment=establishment,
                now=timezone.now(),
            )
        elif form.is_valid():
            booking = services.booking_create(
                connection=connection,
                lead=profile,
                starts_at=form.cleaned_data["slot"],
                profile_ids=form.cleaned_data["visitors"],
                dependant_ids=form.cleaned_data["dependants"],
                aup_accepted=form.cleaned_data["aup"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                establishment=establishment,
                actor=request.user,
            )
            return redirect("bookings:detail", reference=booking.reference)
    except BookingRefused as exc:
        refusal = exc
    # After a refusal the form comes back only when the family can fix it there (and
    # only then are the people who could join read).
    show_form = refusal is None or refusal.code in FIXABLE_ON_THE_FORM
    others, dependants = (
        selectors.companions_for(connection) if connection is not None and show_form else ([], [])
    )
    local_start = timezone.localtime(starts_at, establishment.tz) if starts_at else None
    local = selectors.family_time_zone(profile, establishment)
    family_start = _in_zone(starts_at, local, "D j M H:i")
    chosen_visitors = set(request.POST.getlist("visitors")) if request.method == "POST" else set()
    chosen_dependants = (
        set(request.POST.getlist("dependants")) if request.method == "POST" else set()
    )
    status = 200 if refusal is None and not form.errors else 400
    if refusal is not None and refusal.code in (RuleCode.SLOT_FULL, RuleCode.BUSY):
        status = 409
    return render(
        request,
        "bookings/book.html",
        {
            "establishment": establishment,
            "form": form,
            "refusal": refusal,
            "connection": connection,
            "others": others,
            "dependants": dependants,
            "chosen_visitors": chosen_visitors,
            "chosen_dependants": chosen_dependants,
            "local_start": local_start,
            "family_start": family_start,
            "local": local,
            "profile": profile,
            "show_form": show_form,
        },
        status=status,
    )


@login_required
def my_bookings(request: HttpRequest) -> HttpResponse:
    profile = selectors.visitor_profile_for(request.user)
    if profile is None:
        return render(request, "bookings/my_bookings.html", {"profile": None})
    now = timezone.now()
    bookings = list(selectors.bookings_for_visitor(profile))
    requests_ = [
        b
        for b in bookings
        if b.status == BookingStatus.REQUESTED and b.lead_visitor_id == profile.pk
    ]
    upcoming = sorted(
        (b for b in bookings if b.status == BookingStatus.CONFIRMED and b.ends_at > now),
        key=lambda b: b.starts_at,
    )
    for booking in upcoming:
        booking.joinable = _joinable(booking, now)  # type: ignore[attr-defined]
    past = [b for b in bookings if b not in requests_ and b not in upcoming]
    connections = list(selectors.approved_connections(profile))
    establishments = {c.prisoner.establishment for c in connections}
    return render(
        request,
        "bookings/my_bookings.html",
        {
            "profile": profile,
            "requests": requests_,
            "upcoming": upcoming,
            "past": past,
            "establishments": sorted(establishments, key=lambda e: e.name),
            "now": now,
        },
    )


def _visible_booking(request: HttpRequest, reference: str) -> tuple[Booking, VisitorProfile]:
    profile = selectors.visitor_profile_for(request.user)
    if profile is None:
        raise Http404(_("No such booking."))
    booking = selectors.bookings_for_visitor(profile).filter(reference=reference).first()
    if booking is None:
        raise Http404(_("No such booking."))
    return booking, profile


@login_required
def detail(request: HttpRequest, reference: str) -> HttpResponse:
    booking, profile = _visible_booking(request, reference)
    tz = booking.establishment.tz
    local = selectors.family_time_zone(profile, booking.establishment)
    now = timezone.now()
    return render(
        request,
        "bookings/detail.html",
        {
            "booking": booking,
            "local_start": timezone.localtime(booking.starts_at, tz),
            "local_end": timezone.localtime(booking.ends_at, tz),
            "family_start": _in_zone(booking.starts_at, local, "D j M H:i"),
            "local": local,
            "is_lead": booking.lead_visitor_id == profile.pk,
            "can_cancel": booking.status in ACTIVE_STATUSES
            and booking.starts_at > now
            and booking.lead_visitor_id == profile.pk,
            "can_move": booking.status == BookingStatus.CONFIRMED
            and booking.starts_at > now
            and booking.lead_visitor_id == profile.pk,
            "is_request": booking.status == BookingStatus.REQUESTED,
            "joinable": booking.status == BookingStatus.CONFIRMED and _joinable(booking, now),
        },
    )


def _joinable(booking: Booking, now: datetime) -> bool:
    """The call page opens join_window_minutes before the slot, until the slot ends."""
    opens = booking.starts_at - timedelta(minutes=booking.establishment.join_window_minutes)
    return opens <= now < booking.ends_at


@login_required
def calendar_file(request: HttpRequest, reference: str) -> HttpResponse:
    booking, _profile = _visible_booking(request, reference)
    # A download is published, not sent: the emailed invitations carry REQUEST/CANCEL.
    response = HttpResponse(
        booking_ics(booking, method="PUBLISH"), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="video-call.ics"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, reference: str) -> HttpResponse:
    booking, profile = _visible_booking(request, reference)
    refusal = None
    if request.method == "POST":
        try:
            services.booking_cancel_by_family(booking=booking, lead=profile)
        except BookingRefused as exc:
            refusal = exc
        else:
            messages.success(
                request,
                _(
                    "Your call is cancelled. It does not count towards the monthly allowance, "
                    "so you can book another."
                ),
            )
            return redirect("bookings:my_bookings")
    return render(
        request,
        "bookings/cancel.html",
        {
            "booking": booking,
            "refusal": refusal,
            "local_start": timezone.localtime(booking.starts_at, booking.establishment.tz),
        },
        status=400 if refusal else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def move(request: HttpRequest, reference: str) -> HttpResponse:
    """Step 2 of a family's move: the new time chosen on the portal, then confirm.

    Without a time, the portal's list marked for moving this call."""
    booking, profile = _visible_booking(request, reference)
    data = request.POST if request.method == "POST" else request.GET
    portal_url = (
        reverse("bookings:portal", args=[booking.establishment.code])
        + "?"
        + urlencode({"move": str(booking.reference)})
    )
    if request.method == "GET" and "slot" not in data:
        return redirect(portal_url)
    form = MoveForm(data)
    starts_at = selectors.parse_slot_key(str(data.get("slot", "")))
    refusal: BookingRefused | None = None
    try:
        if starts_at is None or not form.is_valid():
            raise BookingRefused(
                RuleCode.SLOT_NOT_OFFERED, _("Choose one of the times on the booking page.")
            )
        if request.method == "GET":
            services.check_movable(
                booking=booking, lead=profile, starts_at=starts_at, now=timezone.now()
            )
        else:
            old_start = booking.starts_at
            booking = services.booking_move_by_family(
                booking=booking, lead=profile, starts_at=starts_at
            )
            messages.success(request, _moved_message(booking, old_start))
            return redirect("bookings:detail", reference=booking.reference)
    except BookingRefused as exc:
        refusal = exc
        if request.method == "POST":
            # A second click (or tab) that lost to the first: the call is where this
            # one asked for, so that is the answer.
            booking.refresh_from_db()
            if booking.starts_at == starts_at and booking.status == BookingStatus.CONFIRMED:
                return redirect("bookings:detail", reference=booking.reference)
    tz = booking.establishment.tz
    status = 200 if refusal is None else 400
    if refusal is not None and refusal.code in (RuleCode.SLOT_FULL, RuleCode.BUSY):
        status = 409
    local = selectors.family_time_zone(profile, booking.establishment)
    return render(
        request,
        "bookings/move.html",
        {
            "booking": booking,
            "refusal": refusal,
            "slot_key": selectors.slot_key(starts_at) if starts_at else "",
            "old_start": timezone.localtime(booking.starts_at, tz),
            "new_start": timezone.localtime(starts_at, tz) if starts_at else None,
            "family_start": _in_zone(starts_at, local, "D j M H:i"),
            "local": local,
            "portal_url": portal_url,
        },
        status=status,
    )


def _moved_message(booking: Booking, old_start: datetime) -> str:
    tz = booking.establishment.tz
    return _("Your call has moved from %(old)s to %(new)s (UK time). We have emailed you.") % {
        "old": formats.date_format(timezone.localtime(old_start, tz), "l j F, H:i"),
        "new": formats.date_format(timezone.localtime(booking.starts_at, tz), "l j F, H:i"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def respond(request: HttpRequest, reference: str) -> HttpResponse:
    """Accept (with visitors and the policy) or decline a prisoner's request."""
    booking, profile = _visible_booking(request, reference)
    form = AcceptRequestForm(request.POST if request.method == "POST" else None)
    refusal = None
    if request.method == "POST":
        try:
            if request.POST.get("answer") == "decline":
                services.booking_request_decline(booking=booking, lead=profile)
                messages.success(
                    request, _("You declined the call. The person in prison will be told.")
                )
                return redirect("bookings:my_bookings")
            if form.is_valid():
                booking = services.booking_request_accept(
                    booking=booking,
                    lead=profile,
                    profile_ids=form.cleaned_data["visitors"],
                    dependant_ids=form.cleaned_data["dependants"],
                    aup_accepted=form.cleaned_data["aup"],
                )
                return redirect("bookings:detail", reference=booking.reference)
        except BookingRefused as exc:
            refusal = exc
    others, dependants = selectors.companions_for(booking.connection)
    return render(
        request,
        "bookings/respond.html",
        {
            "booking": booking,
            "form": form,
            "refusal": refusal,
            "others": others,
            "dependants": dependants,
            "chosen_visitors": set(request.POST.getlist("visitors")),
            "chosen_dependants": set(request.POST.getlist("dependants")),
            "local_start": timezone.localtime(booking.starts_at, booking.establishment.tz),
        },
        status=400 if refusal or form.errors else 200,
    )
