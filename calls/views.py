"""Call pages: the family's join and call pages, and the terminal (prison laptop) pages."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bookings.models import Booking
from calls import selectors, services
from calls.forms import AcceptablePolicyForm
from calls.models import Call, CallRole
from calls.turn import ice_servers_for
from establishments.models import Terminal
from identity.selectors import precall_enrolment_offered


def _family_booking(request: HttpRequest, reference: uuid.UUID) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("establishment", "prisoner", "terminal", "lead_visitor"),
        reference=reference,
        lead_visitor__user=request.user,
    )


def _not_open(
    request: HttpRequest, booking: Booking, refusal: services.CallRefused
) -> HttpResponse:
    return render(
        request,
        "calls/not_open.html",
        {"booking": booking, "refusal": refusal, "waiting": refusal.code == "OUTSIDE_WINDOW"},
    )


@login_required
def join(request: HttpRequest, reference: uuid.UUID) -> HttpResponse:
    """Pre-call check and the acceptable use policy, from the join window on."""
    booking = _family_booking(request, reference)
    try:
        services.call_check_joinable(booking=booking)
    except services.CallRefused as refusal:
        return _not_open(request, booking, refusal)
    # The policy is accepted once per booking: when it was booked (or a request
    # accepted), it is shown here as a reminder, not asked again (issue 14).
    accepted = booking.aup_accepted_at is not None
    form = AcceptablePolicyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and (accepted or form.is_valid()):
        try:
            call = services.call_open(booking=booking)
        except services.CallRefused as refusal:
            return _not_open(request, booking, refusal)
        if not accepted:
            services.call_accept_aup(booking=booking, user=request.user)  # type: ignore[arg-type]
        return redirect("calls:room", call_id=call.pk)
    return render(
        request,
        "calls/join.html",
        {
            "booking": booking,
            "form": form,
            "aup_accepted": accepted,
            # The optional tick box: frames of this camera check as face data (issue 16).
            "precall_enrol": precall_enrolment_offered(booking.lead_visitor),
            "precall_frames": settings.IDENTITY_PRECALL_FRAMES,
            "precall_days": settings.IDENTITY_PRECALL_ENCODING_DAYS,
        },
    )


def _call_page(request: HttpRequest, call: Call, role: str, **extra: object) -> HttpResponse:
    return render(
        request,
        "calls/room.html",
        {
            "call": call,
            "booking": call.booking,
            "role": role,
            "ice_servers": ice_servers_for(request.user, call),
            **extra,
        },
    )


@login_required
def room(request: HttpRequest, call_id: uuid.UUID) -> HttpResponse:
    """The family's call page."""
    call = selectors.call_with_booking(call_id)
    if call is None or selectors.call_role_for_user(call, request.user) != CallRole.FAMILY:
        raise Http404(_("No such call."))
    if call.booking.aup_accepted_at is None:
        return redirect("calls:join", reference=call.booking.reference)
    if call.status == "ended":
        return render(
            request,
            "calls/ended.html",
            {"call": call, "end_note": selectors.staff_end_note(call)},
        )
    try:
        services.call_check_joinable(booking=call.booking)
    except services.CallRefused as refusal:
        return _not_open(request, call.booking, refusal)
    return _call_page(request, call, CallRole.FAMILY, other_label=_("the prison"))


def _terminal(request: HttpRequest) -> Terminal:
    terminal = selectors.terminal_for_user(request.user)
    if terminal is None:
        raise PermissionDenied(_("This page is for the prison's call laptops."))
    return terminal


@login_required
def terminal_home(request: HttpRequest) -> HttpResponse:
    """The laptop's list of today's calls."""
    terminal = _terminal(request)
    return render(
        request,
        "calls/terminal_list.html",
        {"terminal": terminal, "calls": selectors.terminal_calls_today(terminal)},
    )


@login_required
@require_POST
def terminal_start(request: HttpRequest, reference: uuid.UUID) -> HttpResponse:
    """Staff start the prisoner's side of a call on the laptop."""
    terminal = _terminal(request)
    booking = get_object_or_404(
        Booking.objects.select_related("establishment"), reference=reference, terminal=terminal
    )
    try:
        call = services.call_open(booking=booking)
    except services.CallRefused as refusal:
        return _not_open(request, booking, refusal)
    return redirect("calls:terminal_room", call_id=call.pk)


@login_required
def terminal_room(request: HttpRequest, call_id: uuid.UUID) -> HttpResponse:
    terminal = _terminal(request)
    call = selectors.call_with_booking(call_id)
    if call is None or call.booking.terminal_id != terminal.pk:
        raise Http404(_("No such call."))
    if call.status == "ended":
        return render(
            request,
            "calls/ended.html",
            {"call": call, "kiosk": True, "end_note": selectors.staff_end_note(call)},
        )
    return _call_page(request, call, CallRole.PRISONER, other_label=_("the family"), kiosk=True)
