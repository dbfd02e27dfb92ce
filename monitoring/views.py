from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditAction
from audit.services import audit_record
from calls import services as calls_services
from calls.models import Call, PauseReason
from calls.selectors import call_state_payload, call_with_booking
from calls.services import MESSAGE_MAX_CHARS, REASON_MAX_CHARS, CallActionRefused
from calls.turn import ice_servers_for
from establishments.models import Establishment, RolloutStage, StaffRole
from establishments.permissions import hq_required, role_required
from establishments.selectors import staff_memberships
from monitoring import dashboard, selectors, services
from monitoring.charts import bar_chart
from monitoring.forms import AuditFilterForm
from monitoring.models import Alert
from monitoring.selectors import DashboardAccess, dashboard_access

# Each watched tile is one more monitor peer, and the relay encodes every output on its
# own: on a 2-core relay a few small views per terminal is what stays smooth.
WATCH_MAX = 2

# The national page lists this many countries by name, then "and N more".
TOP_COUNTRIES = 15

CSV_COLUMNS = ["when", "who", "establishment", "action", "target", "reason", "detail"]


def _in_reader_language(message: str) -> str:
    """A message raised in English and marked for translation, in the active language
    (unmarked text is returned as it is; "" would give the catalogue's header)."""
    return gettext(message) if message else message


def _filtered(request: HttpRequest, establishment: Establishment):  # type: ignore[no-untyped-def]
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = selectors.audit_entries(
        establishment=establishment,
        action=filters.get("action", ""),
        actor=filters.get("actor", ""),
        since=filters.get("since"),
        until=filters.get("until"),
    )
    return form, entries


@require_GET
@role_required(StaffRole.VISITS_ADMIN)
def audit_log(request: HttpRequest, establishment: Establishment) -> HttpResponse:
    form, entries = _filtered(request, establishment)
    if form.is_bound and not form.is_valid():
        entries = entries.none()
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "monitoring/audit_log.html",
        {"establishment": establishment, "form": form, "page": page, "query": query.urlencode()},
    )


def _csv_safe(value: object) -> str:
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(StaffRole.VISITS_ADMIN)
def audit_csv(
    request: HttpRequest, establishment: Establishment
) -> HttpResponse | StreamingHttpResponse:
    form, entries = _filtered(request, establishment)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            gettext("The filters are not valid: %(errors)s")
            % {
                "errors": "; ".join(
                    f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
                )
            },
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for entry in entries.iterator(chunk_size=500):
            yield writer.writerow(
                [
                    _csv_safe(timezone.localtime(entry.created_at).isoformat()),
                    _csv_safe(entry.actor_label),
                    _csv_safe(establishment.name),
                    _csv_safe(entry.get_action_display()),
                    _csv_safe(
                        f"{entry.target_type}:{entry.target_id}" if entry.target_type else ""
                    ),
                    _csv_safe(entry.reason),
                    _csv_safe(entry.detail or ""),
                ]
            )

    stamp = timezone.localdate().isoformat()
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{establishment.code}-{stamp}.csv"'
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@hq_required
def national_dashboard(request: HttpRequest) -> HttpResponse:
    figures = selectors.national_figures(weeks=12)
    # Week labels in the reader's language ("3 Mar", "3 Maw").
    weeks = [date_format(w.week, "j M") for w in figures.weeks]
    calls_chart = bar_chart(
        gettext("Calls per week"),
        [(week, w.calls) for week, w in zip(weeks, figures.weeks, strict=True)],
        label_heading=gettext("Week starting"),
        value_heading=gettext("Calls"),
    )
    hours_chart = bar_chart(
        gettext("Call hours per week"),
        [(week, w.hours) for week, w in zip(weeks, figures.weeks, strict=True)],
        label_heading=gettext("Week starting"),
        value_heading=gettext("Hours"),
    )
    stage_chart = bar_chart(
        gettext("Establishments by rollout stage"),
        [(label, count) for _, label, count in figures.stage_counts],
        label_heading=gettext("Rollout stage"),
        value_heading=gettext("Establishments"),
    )
    top_countries = figures.countries[:TOP_COUNTRIES]
    return render(
        request,
        "monitoring/national.html",
        {
            "figures": figures,
            "charts": [calls_chart, hours_chart, stage_chart],
            "top_countries": top_countries,
            "more_countries": len(figures.countries) - len(top_countries),
        },
    )


def _dashboard_access_or_deny(request: HttpRequest, code: str) -> DashboardAccess:
    access = dashboard_access(request.user, code)
    if access is None:
        if (
            staff_memberships(request.user).exists()
            and Establishment.objects.filter(code=code).exists()
        ):
            raise Http404("No such establishment.")
        raise PermissionDenied("Officers at this establishment only.")
    return access


@require_GET
@login_required
def live_dashboard(request: HttpRequest, code: str) -> HttpResponse:
    access = _dashboard_access_or_deny(request, code)
    establishment = access.establishment
    tiles = dashboard.tiles_for_day(establishment)
    columns = [
        (key, label, [t for t in tiles if t["column"] == key]) for key, label in dashboard.COLUMNS
    ]
    return render(
        request,
        "monitoring/dashboard.html",
        {
            "establishment": establishment,
            "can_control": access.can_control,
            "columns": columns,
            "alert_groups": dashboard.alert_groups(dashboard.open_alerts(establishment)),
            "today": timezone.localdate(timezone.now(), establishment.tz),
            "watch_max": WATCH_MAX,
            "ice_servers": ice_servers_for(request.user),
        },
    )


@require_POST
@role_required(StaffRole.OFFICER)
def call_alerts_acknowledge(
    request: HttpRequest, establishment: Establishment, call_id: uuid.UUID
) -> HttpResponse:
    """Acknowledge all open alerts of one call of this establishment."""
    call = get_object_or_404(Call, pk=call_id, booking__establishment=establishment)
    done = services.alert_acknowledge_for_call(
        call_id=call.pk,
        establishment=establishment,
        actor=request.user,  # type: ignore[arg-type]
    )
    if done:
        messages.success(
            request,
            ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", done)
            % {"count": done},
        )
    else:
        messages.info(request, gettext("This call has no alerts left to acknowledge."))
    if request.POST.get("next") == "call":
        return redirect("monitoring:call_detail", code=establishment.code, call_id=call.pk)
    return redirect("monitoring:dashboard", code=establishment.code)


@require_POST
@role_required(StaffRole.OFFICER)
def alert_acknowledge(
    request: HttpRequest, establishment: Establishment, alert_id: int
) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=alert_id, establishment=establishment)
    if services.alert_acknowledge(alert_id=alert.pk, actor=request.user):  # type: ignore[arg-type]
        messages.success(request, gettext("Alert acknowledged."))
    else:
        messages.info(request, gettext("Someone had already acknowledged that alert."))
    return redirect("monitoring:dashboard", code=establishment.code)


@require_GET
@login_required
def alert_snapshot(request: HttpRequest, code: str, alert_id: int) -> FileResponse:
    access = _dashboard_access_or_deny(request, code)
    alert = get_object_or_404(Alert, pk=alert_id, establishment=access.establishment)
    if not alert.snapshot:
        raise Http404("No snapshot for this alert.")
    audit_record(
        actor=request.user,  # type: ignore[arg-type]
        action=AuditAction.SNAPSHOT_VIEW,
        establishment=access.establishment,
        target=alert,
    )
    response = FileResponse(alert.snapshot.open("rb"), content_type="image/jpeg")
    response["Content-Disposition"] = f'inline; filename="alert-{alert.pk}.jpg"'
    response["Cache-Control"] = "no-store, private"
    return response


# --- One call, for officers -------------------------------------------------------------

CONTROL_ACTIONS = ("pause", "resume", "terminate", "message")
_CONTROL_DONE = {
    "pause": gettext_lazy("Call paused. Both sides see 'Call paused' until you resume it."),
    "resume": gettext_lazy("Call resumed."),
    "terminate": gettext_lazy("Call ended. Both sides have been told."),
    "message": gettext_lazy("Message sent to both sides."),
}


def _call_detail_context(
    call: Any, can_control: bool, user: Any = None, **extra: object
) -> dict[str, Any]:
    return {
        "call": call,
        "booking": call.booking,
        "establishment": call.booking.establishment,
        "can_control": can_control,
        "state": call_state_payload(call),
        "events": selectors.call_events(call),
        "open_alert_count": Alert.objects.filter(call=call, acknowledged_at__isnull=True).count()
        if can_control
        else 0,
        # HQ sees status only: no media, no TURN credentials.
        "ice_servers": ice_servers_for(user, call) if can_control else [],
        "message_max": MESSAGE_MAX_CHARS,
        "reason_max": REASON_MAX_CHARS,
        **extra,
    }


@require_GET
@login_required
def call_detail(request: HttpRequest, code: str, call_id: uuid.UUID) -> HttpResponse:
    """Both sides full size with sound (officers), status and controls; HQ: status only."""
    _dashboard_access_or_deny(request, code)
    access = selectors.call_detail_access(request.user, code, call_id)
    if access is None:
        raise Http404("No such call at this establishment.")
    return render(
        request,
        "monitoring/call_detail.html",
        _call_detail_context(access.call, access.can_control, request.user),
    )


@require_POST
def call_control(request: HttpRequest, code: str, call_id: uuid.UUID, action: str) -> HttpResponse:
    """The controls as plain forms (they work without JavaScript): the same services
    as the signalling socket's ``control`` messages. Refusals are shown and logged."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if action not in CONTROL_ACTIONS:
        raise Http404("No such control.")
    call = call_with_booking(call_id)
    if call is None:
        raise Http404("No such call.")
    access = selectors.call_detail_access(request.user, code, call_id)
    if access is None or not access.can_control:
        # The audit log keeps the English; the page says it in the reader's language.
        message = (
            gettext_noop("Headquarters staff can see calls but not act on them.")
            if access is not None
            else gettext_noop("Only officers at this call's establishment can control it.")
        )
        services.control_refusal_record(
            actor=request.user,  # type: ignore[arg-type]
            call=call,
            action=action,
            code="forbidden",
            message=message,
            request=request,
        )
        return render(
            request,
            "monitoring/control_refused.html",
            {"message": _in_reader_language(message)},
            status=403,
        )
    reason = str(request.POST.get("reason", ""))
    text = str(request.POST.get("text", ""))
    user = request.user
    try:
        if action == "pause":
            if len(reason) > REASON_MAX_CHARS:
                raise CallActionRefused("REASON_TOO_LONG", gettext_noop("The reason is too long."))
            done = calls_services.call_pause(
                call_id=call.pk, reason=PauseReason.STAFF, actor=user, detail=reason.strip()
            )
        elif action == "resume":
            if len(reason) > REASON_MAX_CHARS:
                raise CallActionRefused("REASON_TOO_LONG", gettext_noop("The reason is too long."))
            done = calls_services.call_resume(call_id=call.pk, actor=user, reason=reason.strip())
        elif action == "terminate":
            done = calls_services.call_terminate(call_id=call.pk, actor=user, reason=reason)
        else:
            done = calls_services.call_message(call_id=call.pk, actor=user, text=text)
    except CallActionRefused as refusal:
        services.control_refusal_record(
            actor=user,  # type: ignore[arg-type]
            call=call,
            action=action,
            code=refusal.code.lower(),
            message=refusal.message,
            request=request,
        )
        context = _call_detail_context(
            call,
            True,
            request.user,
            # Messages marked for translation (here or in the call services) are shown
            # in the reader's language; the audit entry above keeps them as raised.
            errors=[(f"{action}-field", _in_reader_language(refusal.message))],
            failed_action=action,
            posted={"reason": reason[:REASON_MAX_CHARS], "text": text[:MESSAGE_MAX_CHARS]},
        )
        return render(request, "monitoring/call_detail.html", context, status=400)
    if done:
        messages.success(request, str(_CONTROL_DONE[action]))
    else:
        call.refresh_from_db(fields=["status"])
        messages.info(
            request,
            gettext("Nothing changed: the call is %(status)s.")
            % {"status": call.get_status_display().lower()},
        )
    return redirect("monitoring:call_detail", code=code, call_id=call.pk)


# --- Staff test calls -------------------------------------------------------------------


@role_required(StaffRole.VISITS_ADMIN)
def test_calls(request: HttpRequest, establishment: Establishment) -> HttpResponse:
    """Place a staff test call (rollout stage 'test calls') and see the recent ones."""
    terminals, staff = selectors.test_call_candidates(establishment)
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        try:
            terminal_id = int(request.POST.get("terminal", ""))
            family_user_id = int(request.POST.get("family", ""))
        except ValueError:
            errors.append(("terminal", gettext("Choose a laptop and who plays the family.")))
        else:
            try:
                placed = services.test_call_place(
                    establishment=establishment,
                    actor=request.user,  # type: ignore[arg-type]
                    terminal_id=terminal_id,
                    family_user_id=family_user_id,
                )
            except services.TestCallRefused as refusal:
                field = "family" if refusal.code == "NOT_STAFF" else "terminal"
                errors.append((field, _in_reader_language(refusal.message)))
            else:
                messages.success(
                    request,
                    gettext(
                        "Test call placed on %(laptop)s. Start it on the laptop; the person "
                        "playing the family joins from the link below."
                    )
                    % {"laptop": placed.booking.terminal.name},
                )
                return redirect("monitoring:test_calls", code=establishment.code)
    elif request.method != "GET":
        return HttpResponse(status=405)
    return render(
        request,
        "monitoring/test_calls.html",
        {
            "establishment": establishment,
            "open_for_tests": establishment.rollout_stage == RolloutStage.TEST_CALLS,
            "terminals": terminals,
            "staff": staff,
            "errors": errors,
            "test_calls": selectors.recent_test_calls(establishment),
        },
        status=400 if errors else 200,
    )
