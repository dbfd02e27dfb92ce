"""Pages of the identity app: the visitor's own pages under /me/ and the visits
admin's review pages under /staff/<code>/identity/. Views are thin: forms check input,
services write, selectors read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.account.decorators import verified_email_required
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import AuditAction
from audit.services import audit_record
from establishments.models import Establishment, Prisoner
from establishments.permissions import role_required
from establishments.selectors import has_role_at, is_staff_member
from identity import forms, selectors, services
from identity.models import ConnectionStatus, Dependant, IdentityCheck, VisitorProfile
from identity.services import IdentityError

IMAGE_KINDS = {"id": "id_image", "selfie": "selfie_image"}


def _apply_error(form: Any, error: IdentityError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _private_image(file: FieldFile, *, filename: str) -> FileResponse:
    response = FileResponse(file.open("rb"), content_type="image/jpeg")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "no-store, private"
    response["Pragma"] = "no-cache"
    return response


def _refuse_image(
    request: HttpRequest, *, establishment: Establishment | None, detail: dict
) -> None:
    audit_record(
        actor=request.user,  # type: ignore[arg-type]
        action=AuditAction.ID_IMAGE_DENIED,
        establishment=establishment,
        detail={"path": request.path[:200], **detail},
    )
    raise Http404(_("No such image."))


def _require_profile(request: HttpRequest) -> VisitorProfile | None:
    return selectors.profile_for(request.user)


# --- The visitor's pages ---------------------------------------------------------------------


@verified_email_required
def me(request: HttpRequest) -> HttpResponse:
    overview = selectors.visitor_overview(request.user)  # type: ignore[arg-type]
    return render(request, "identity/me.html", {"overview": overview})


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_profile(request: HttpRequest) -> HttpResponse:
    profile = _require_profile(request)
    initial = (
        {
            "legal_name": profile.legal_name,
            "date_of_birth": profile.date_of_birth,
            "phone": profile.phone,
            "country_of_residence": profile.country_of_residence,
        }
        if profile
        else {"country_of_residence": "GB"}
    )
    form = forms.ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.profile_save(user=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(request, _("Your details are saved."))
            return redirect("me")
    return render(request, "identity/profile_form.html", {"form": form, "profile": profile})


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_consent(request: HttpRequest) -> HttpResponse:
    profile = _require_profile(request)
    if profile is None:
        return redirect("me_profile")
    initial = (
        {}
        if profile.biometric_consent is None
        else {"consent": "yes" if profile.biometric_consent else "no"}
    )
    form = forms.ConsentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        consent = form.cleaned_data["consent"] == "yes"
        services.consent_set(profile=profile, consent=consent)
        if consent:
            messages.success(request, _("Thank you. Your face will be checked by computer."))
        else:
            messages.success(
                request,
                _(
                    "Prison staff will check your photos by hand. Any stored face data has been "
                    "deleted."
                ),
            )
        return redirect("me")
    return render(
        request,
        "identity/consent_form.html",
        {
            "form": form,
            "profile": profile,
            "notice_version": settings.IDENTITY_CONSENT_NOTICE_VERSION,
        },
    )


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_identity(request: HttpRequest) -> HttpResponse:
    profile = _require_profile(request)
    if profile is None:
        return redirect("me_profile")
    if profile.biometric_consent is None:
        return redirect("me_consent")
    form = forms.IdentityForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.identity_check_submit(
                profile=profile,
                id_photo=form.cleaned_data["id_photo"],
                selfie=form.cleaned_data["selfie"],
            )
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(request, _("Thank you. Your photos have been sent for checking."))
            return redirect("me")
    return render(request, "identity/identity_form.html", {"form": form, "profile": profile})


@verified_email_required
def me_check_image(request: HttpRequest, check_id: int, kind: str) -> HttpResponseBase:
    check = IdentityCheck.objects.filter(pk=check_id).select_related("profile").first()
    field = IMAGE_KINDS.get(kind)
    if check is None or field is None or check.profile.user_id != request.user.pk:
        _refuse_image(request, establishment=None, detail={"check": check_id, "kind": kind})
    assert check is not None and field is not None  # noqa: S101
    file = getattr(check, field)
    if not file:
        raise Http404(_("This photo has been deleted."))
    return _private_image(file, filename=f"{kind}-{check.pk}.jpg")


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_dependant_add(request: HttpRequest) -> HttpResponse:
    profile = _require_profile(request)
    if profile is None:
        return redirect("me_profile")
    if profile.biometric_consent is None:
        return redirect("me_consent")
    form = forms.DependantForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            dependant = services.dependant_add(profile=profile, **form.cleaned_data)
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(
                request,
                _("%(first_name)s has been added and will be checked.")
                % {"first_name": dependant.first_name},
            )
            return redirect("me")
    return render(request, "identity/dependant_form.html", {"form": form})


def _own_dependant(request: HttpRequest, dependant_id: int) -> Dependant | None:
    return Dependant.objects.filter(
        pk=dependant_id, lead_visitor__user_id=request.user.pk or 0
    ).first()


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_dependant_photo(request: HttpRequest, dependant_id: int) -> HttpResponse:
    dependant = _own_dependant(request, dependant_id)
    if dependant is None:
        raise Http404(_("No such person."))
    form = forms.DependantPhotoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.dependant_replace_photo(dependant=dependant, photo=form.cleaned_data["photo"])
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(
                request,
                _("The new photo of %(first_name)s has been sent.")
                % {"first_name": dependant.first_name},
            )
            return redirect("me")
    return render(
        request, "identity/dependant_photo_form.html", {"form": form, "dependant": dependant}
    )


@verified_email_required
def me_dependant_image(request: HttpRequest, dependant_id: int) -> HttpResponseBase:
    dependant = _own_dependant(request, dependant_id)
    if dependant is None:
        _refuse_image(request, establishment=None, detail={"dependant": dependant_id})
    assert dependant is not None  # noqa: S101
    if not dependant.photo:
        raise Http404(_("No photo."))
    return _private_image(dependant.photo, filename=f"dependant-{dependant.pk}.jpg")


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_connect(request: HttpRequest) -> HttpResponse:
    profile = _require_profile(request)
    if profile is None:
        return redirect("me_profile")
    form = forms.ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.connection_request(profile=profile, request=request, **form.cleaned_data)
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(request, _("Your request has been sent to the prison."))
            return redirect("me")
    return render(request, "identity/connection_form.html", {"form": form})


# Refusals other pictures would not change (403, 429); the rest are bad requests (400).
PRECALL_REFUSAL_STATUS = {
    "NO_PROFILE": 403,
    "NO_CONSENT": 403,
    "NOT_ENROLLED": 403,
    "TOO_MANY_CHECKS": 429,
}


def _precall_answer(error: IdentityError) -> JsonResponse:
    return JsonResponse(
        {"error": error.code, "message": error.message},
        status=PRECALL_REFUSAL_STATUS.get(error.code, 400),
    )


def _precall_uploads(request: HttpRequest) -> list[UploadedFile]:
    try:
        files = request.FILES
    except (TooManyFilesSent, TooManyFieldsSent, RequestDataTooBig, MultiPartParserError):
        files = None
    if files is None or any(name != "frame" for name in files):
        raise IdentityError(
            "BAD_REQUEST",
            _("Send the pictures from the camera check as frames, and nothing else."),
        )
    return files.getlist("frame")


@login_required
@require_http_methods(["GET", "POST"])
def me_precall_frames(request: HttpRequest) -> JsonResponse:
    """The join page's camera check: POST up to five frames to add to the visitor's own
    face data (checked later, by a task); GET ``?check=<token>`` says what became of
    them. JSON either way; only ever the signed-in visitor's own profile."""
    profile = _require_profile(request)
    if profile is None:
        return _precall_answer(
            IdentityError(
                "NO_PROFILE", _("Only a visitor's own account can send pictures from the camera.")
            )
        )
    if request.method == "POST":
        try:
            token = services.precall_frames_submit(
                profile=profile, uploads=_precall_uploads(request)
            )
        except IdentityError as error:
            return _precall_answer(error)
    else:
        token = request.GET.get("check", "")
    result = services.precall_check_result(profile=profile, token=token)
    if result is None:
        return JsonResponse(
            {"error": "NO_SUCH_CHECK", "message": _("There is no such camera check.")}, status=404
        )
    answer = {
        "status": result,
        "message": str(services.PRECALL_MESSAGES[result]),
        "check": token,
        "poll": f"{reverse('me_precall_frames')}?{urlencode({'check': token})}",
    }
    pending = request.method == "POST" and result == services.PrecallResult.PENDING
    response = JsonResponse(answer, status=202 if pending else 200)
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def me_delete(request: HttpRequest) -> HttpResponse:
    form = forms.DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        services.account_delete(user=user)  # type: ignore[arg-type]
        messages.success(request, _("Your account, photos and face data have been deleted."))
        return redirect("home")
    return render(request, "identity/delete_account.html", {"form": form})


# --- Staff pages -------------------------------------------------------------------------------


@login_required
def staff_home(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise Http404(_("Staff only."))
    memberships = request.user.staff_memberships.select_related("establishment").order_by(  # type: ignore[union-attr]
        "establishment__name"
    )
    return render(request, "identity/staff_home.html", {"memberships": memberships})


@role_required("visits_admin")
def staff_queue(request: HttpRequest, establishment: Establishment) -> HttpResponse:
    context = {
        "establishment": establishment,
        "checks": selectors.identity_checks_to_review(establishment),
        "dependants": selectors.dependants_to_review(establishment),
        "pending_connections": selectors.connections_at(establishment, [ConnectionStatus.PENDING]),
        "approved_connections": selectors.connections_at(
            establishment, [ConnectionStatus.APPROVED]
        ),
        "limit_alerts": selectors.connection_limit_alerts(establishment),
        "limit_alert_days": selectors.CONNECTION_LIMIT_ALERT_DAYS,
    }
    return render(request, "identity/staff_queue.html", context)


def _decide(
    request: HttpRequest,
    establishment: Establishment,
    *,
    approve: Callable[..., object],
    reject: Callable[..., object],
    target: dict[str, object],
    name: str,
    template: str,
) -> HttpResponse:
    """A visits admin's approve/reject form: the service decides, errors go on the form."""
    form = forms.DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decide = approve if form.cleaned_data["decision"] == "approve" else reject
        try:
            decide(
                **target,
                by=request.user,
                establishment=establishment,
                reason=form.cleaned_data["reason"],
            )
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(request, _("Decision recorded for %(name)s.") % {"name": name})
            return redirect("identity_staff_queue", code=establishment.code)
    return render(request, template, {"establishment": establishment, "form": form, **target})


@role_required("visits_admin")
@require_http_methods(["GET", "POST"])
def staff_check(request: HttpRequest, check_id: int, establishment: Establishment) -> HttpResponse:
    check = selectors.check_for_staff(establishment, check_id)
    if check is None:
        raise Http404(_("No such identity check here."))
    return _decide(
        request,
        establishment,
        approve=services.identity_check_approve,
        reject=services.identity_check_reject,
        target={"check": check},
        name=check.profile.legal_name,
        template="identity/staff_check.html",
    )


def _staff_image_establishment(request: HttpRequest, code: str) -> Establishment | None:
    """The establishment if the user is a visits admin there; refusals are logged."""
    if not request.user.is_authenticated:
        return None
    establishment = Establishment.objects.filter(code=code).first()
    if establishment is None or not has_role_at(request.user, establishment, "visits_admin"):
        _refuse_image(request, establishment=establishment, detail={"code": code[:64]})
    return establishment


@login_required
def staff_check_image(
    request: HttpRequest, code: str, check_id: int, kind: str
) -> HttpResponseBase:
    establishment = _staff_image_establishment(request, code)
    field = IMAGE_KINDS.get(kind)
    check = selectors.check_for_staff(establishment, check_id) if establishment else None
    if check is None or field is None:
        _refuse_image(request, establishment=establishment, detail={"check": check_id})
    assert check is not None and field is not None  # noqa: S101
    file = getattr(check, field)
    if not file:
        raise Http404(_("This photo has been deleted."))
    with transaction.atomic():
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action=AuditAction.ID_IMAGE_VIEW,
            establishment=establishment,
            target=check,
            detail={"kind": kind},
        )
    return _private_image(file, filename=f"{kind}-{check.pk}.jpg")


@role_required("visits_admin")
@require_http_methods(["GET", "POST"])
def staff_dependant(
    request: HttpRequest, dependant_id: int, establishment: Establishment
) -> HttpResponse:
    dependant = selectors.dependant_for_staff(establishment, dependant_id)
    if dependant is None:
        raise Http404(_("No such person here."))
    return _decide(
        request,
        establishment,
        approve=services.dependant_approve,
        reject=services.dependant_reject,
        target={"dependant": dependant},
        name=dependant.full_name,
        template="identity/staff_dependant.html",
    )


@login_required
def staff_dependant_photo(request: HttpRequest, code: str, dependant_id: int) -> HttpResponseBase:
    establishment = _staff_image_establishment(request, code)
    dependant = (
        selectors.dependant_for_staff(establishment, dependant_id) if establishment else None
    )
    if dependant is None:
        _refuse_image(request, establishment=establishment, detail={"dependant": dependant_id})
    assert dependant is not None  # noqa: S101
    if not dependant.photo:
        raise Http404(_("No photo."))
    with transaction.atomic():
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action=AuditAction.ID_IMAGE_VIEW,
            establishment=establishment,
            target=dependant,
            detail={"kind": "dependant_photo"},
        )
    return _private_image(dependant.photo, filename=f"dependant-{dependant.pk}.jpg")


@role_required("visits_admin")
@require_http_methods(["GET", "POST"])
def staff_connection(
    request: HttpRequest, connection_id: int, establishment: Establishment
) -> HttpResponse:
    connection = selectors.connection_for_staff(establishment, connection_id)
    if connection is None:
        raise Http404(_("No such connection here."))
    is_pending = connection.status == ConnectionStatus.PENDING
    form: forms.DecisionForm | forms.RevokeForm = (
        forms.DecisionForm(request.POST or None)
        if is_pending
        else forms.RevokeForm(request.POST or None)
    )
    if request.method == "POST" and form.is_valid():
        try:
            if not is_pending:
                services.connection_revoke(
                    connection=connection,
                    by=request.user,  # type: ignore[arg-type]
                    establishment=establishment,
                    reason=form.cleaned_data["reason"],
                )
            elif form.cleaned_data["decision"] == "approve":
                services.connection_approve(
                    connection=connection,
                    by=request.user,  # type: ignore[arg-type]
                    establishment=establishment,
                    reason=form.cleaned_data["reason"],
                )
            else:
                services.connection_reject(
                    connection=connection,
                    by=request.user,  # type: ignore[arg-type]
                    establishment=establishment,
                    reason=form.cleaned_data["reason"],
                )
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(request, _("Decision recorded."))
            return redirect("identity_staff_queue", code=establishment.code)
    return render(
        request,
        "identity/staff_connection.html",
        {
            "establishment": establishment,
            "connection": connection,
            "form": form,
            "is_pending": is_pending,
            "can_revoke": connection.status == ConnectionStatus.APPROVED,
        },
    )


def _prisoner_here(establishment: Establishment, prison_number: str) -> Prisoner:
    prisoner = selectors.prisoner_for_staff(establishment, prison_number)
    if prisoner is None:
        raise Http404(_("No such prisoner here."))
    return prisoner


@role_required("visits_admin")
@require_GET
def staff_prisoners(request: HttpRequest, establishment: Establishment) -> HttpResponse:
    """The establishment's prisoners and whether each has a face photo for the checks."""
    query = request.GET.get("q", "")[:100]
    paginator = Paginator(
        selectors.prisoners_with_enrolment(establishment, query), selectors.PRISONERS_PER_PAGE
    )
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "identity/staff_prisoners.html",
        {
            "establishment": establishment,
            "page": page,
            "query": query,
            "query_string": urlencode({"q": query}) if query else "",
        },
    )


@role_required("visits_admin")
@require_POST
def staff_prisoner_photo_remove(
    request: HttpRequest, prison_number: str, establishment: Establishment
) -> HttpResponse:
    prisoner = _prisoner_here(establishment, prison_number)
    removed = services.prisoner_enrolment_remove(
        prisoner=prisoner,
        by=request.user,  # type: ignore[arg-type]
        establishment=establishment,
    )
    name = f"{prisoner.first_name} {prisoner.last_name}"
    if removed:
        messages.success(request, _("The photo of %(name)s is removed.") % {"name": name})
    else:
        messages.info(request, _("%(name)s had no photo enrolled.") % {"name": name})
    return redirect(
        "identity_staff_prisoner_photo",
        code=establishment.code,
        prison_number=prisoner.prison_number,
    )


@role_required("visits_admin")
@require_http_methods(["GET", "POST"])
def staff_prisoner_photo(
    request: HttpRequest, prison_number: str, establishment: Establishment
) -> HttpResponse:
    """Enrol a prisoner's face (upload, or the terminal's webcam) for the call checks."""
    prisoner = _prisoner_here(establishment, prison_number)
    posted = request.method == "POST"
    form = forms.PrisonerPhotoForm(
        request.POST if posted else None, request.FILES if posted else None
    )
    if posted and form.is_valid():
        try:
            services.prisoner_enrol(
                prisoner=prisoner,
                photo=form.cleaned_data["photo"],
                by=request.user,  # type: ignore[arg-type]
                establishment=establishment,
            )
        except IdentityError as error:
            _apply_error(form, error)
        else:
            messages.success(
                request,
                _("The photo of %(first_name)s %(last_name)s is enrolled.")
                % {"first_name": prisoner.first_name, "last_name": prisoner.last_name},
            )
            return redirect(
                "identity_staff_prisoner_photo",
                code=establishment.code,
                prison_number=prisoner.prison_number,
            )
    return render(
        request,
        "identity/staff_prisoner_photo.html",
        {
            "establishment": establishment,
            "prisoner": prisoner,
            "form": form,
            "enrolled_at": selectors.prisoner_enrolled_at(prisoner),
        },
    )
