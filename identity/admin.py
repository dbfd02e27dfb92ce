"""Visitors in Django admin: find a family, export its data, erase it.

Identity evidence is never shown here: no ID image, selfie or dependant photo inline
and no face encoding (FaceEnrolment is not registered; a visitor's page lists only what
each encoding was made from and when). The images are viewed
on the prison's identity review pages, where every view is audited; the change page
links there. Decisions (approve, reject, revoke) also stay on those pages: they go
through identity.services, which records them and ends calls a revocation stops.

Deleting a visitor's User is refused here with a pointer to "Erase this family": a
plain delete would be stopped by the bookings that refer to the visitor, and would
skip the photo and encoding clean-up (identity.subject_access.family_erase).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from identity.models import (
    Connection,
    ConnectionStatus,
    Dependant,
    FaceEnrolment,
    GroupMember,
    IdentityCheck,
    VisitorProfile,
)
from identity.subject_access import (
    FamilyEraseRefused,
    family_erase,
    family_export,
    family_live_calls,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _review_links(profile: VisitorProfile, url_name: str, pk: int) -> str:
    """Links to the audited staff page of each prison the visitor is connected to."""
    codes = (
        Connection.objects.filter(
            visitor=profile,
            status__in=[ConnectionStatus.PENDING, ConnectionStatus.APPROVED],
        )
        .values_list("prisoner__establishment__code", "prisoner__establishment__name")
        .distinct()
    )
    links = []
    for code, name in codes:
        try:
            links.append((reverse(url_name, args=[code, pk]), name))
        except NoReverseMatch:
            continue
    if not links:
        return str(_("no prison to review it at (no open connection)"))
    return format_html_join(", ", '<a href="{}">{}</a>', links)


class IdentityCheckInline(ReadOnlyInline):
    model = IdentityCheck
    fields = [
        "submitted_at",
        "face_result",
        "face_distance",
        "status",
        "decided_at",
        "decision_reason",
        "images",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name_plural = _("Identity checks (images only on the prison's review page)")

    @admin.display(description=_("ID and selfie"))
    def images(self, obj: IdentityCheck) -> str:
        if obj.images_deleted_at or not (obj.id_image or obj.selfie_image):
            return str(_("deleted"))
        return format_html(
            "{} {}",
            _("stored; view (audited) at"),
            _review_links(obj.profile, "identity_staff_check", obj.pk),
        )


class DependantInline(ReadOnlyInline):
    model = Dependant
    fk_name = "lead_visitor"
    fields = ["first_name", "last_name", "date_of_birth", "status", "face_result", "decided_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]


class ConnectionInline(ReadOnlyInline):
    model = Connection
    fields = ["prisoner", "relationship", "status", "requested_at", "decided_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name_plural = _("Connections (decisions on the prison's review page)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).select_related("prisoner")


class FaceEnrolmentInline(ReadOnlyInline):
    """What each of the visitor's face encodings was made from (selfie, photo ID, camera
    check before a call) and when: never the encoding itself."""

    model = FaceEnrolment
    fk_name = "profile"
    fields = ["source", "created_at", "last_used_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name = _("face encoding")
    verbose_name_plural = _("Face encodings (encrypted, never shown)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[FaceEnrolment]:
        return (
            super()
            .get_queryset(request)
            .only("pk", "profile", "source", "created_at", "last_used_at")
        )


class GroupMemberInline(ReadOnlyInline):
    model = GroupMember
    fk_name = "lead"
    fields = ["member", "status", "invited_at", "accepted_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name_plural = _("People in this visitor's group")

    def get_queryset(self, request: HttpRequest) -> QuerySet[GroupMember]:
        return super().get_queryset(request).select_related("member")


@admin.register(VisitorProfile)
class VisitorProfileAdmin(admin.ModelAdmin):
    list_display = [
        "legal_name",
        "email",
        "verification_status",
        "biometric_consent",
        "country_of_residence",
        "created_at",
    ]
    list_filter = ["verification_status", "biometric_consent", "country_of_residence"]
    search_fields = [
        "legal_name",
        "user__email",
        "connections__prisoner__prison_number",
        "dependants__first_name",
        "dependants__last_name",
    ]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    # Name and date of birth were checked against the ID, and consent and verification
    # have their own flows: only the contact details can be corrected here.
    fields = [
        "user",
        "legal_name",
        "date_of_birth",
        "phone",
        "country_of_residence",
        "verification_status",
        "biometric_consent",
        "consent_changed_at",
        "consent_notice_version",
        "created_at",
        "updated_at",
    ]
    readonly_fields = [
        "user",
        "legal_name",
        "date_of_birth",
        "verification_status",
        "biometric_consent",
        "consent_changed_at",
        "consent_notice_version",
        "created_at",
        "updated_at",
    ]
    inlines = [
        IdentityCheckInline,
        FaceEnrolmentInline,
        DependantInline,
        ConnectionInline,
        GroupMemberInline,
    ]
    actions = ["export_family", "erase_family"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # visitors sign up themselves (email verification)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # "Erase this family" instead: it does the clean-up

    @admin.display(description=_("email"), ordering="user__email")
    def email(self, obj: VisitorProfile) -> str:
        return obj.user.email

    @admin.action(description=_("Export this family's data (zip)"), permissions=["view"])
    def export_family(
        self, request: HttpRequest, queryset: QuerySet[VisitorProfile]
    ) -> HttpResponse | None:
        profiles = list(queryset.select_related("user")[:2])
        if len(profiles) != 1:
            self.message_user(
                request,
                _("Choose one visitor: each family is exported on its own."),
                messages.ERROR,
            )
            return None
        profile = profiles[0]
        content = family_export(profile=profile, actor=request.user)
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="family-{profile.pk}.zip"'
        return response

    @admin.action(description=_("Erase this family"), permissions=["change"])
    def erase_family(
        self, request: HttpRequest, queryset: QuerySet[VisitorProfile]
    ) -> HttpResponse | None:
        profiles = list(queryset.select_related("user")[:2])
        if len(profiles) != 1:
            self.message_user(
                request, _("Choose one visitor: each family is erased on its own."), messages.ERROR
            )
            return None
        profile = profiles[0]
        if request.POST.get("post") == "yes":
            try:
                summary = family_erase(profile=profile, actor=request.user)
            except FamilyEraseRefused as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
                return None
            self.message_user(
                request,
                _(
                    "The family is erased: %(files)s photos deleted, face data deleted, "
                    "%(cancelled)s future calls cancelled, %(kept)s bookings kept anonymised "
                    "for the prison's records."
                )
                % {
                    "files": summary["files_deleted"],
                    "cancelled": summary["future_bookings_cancelled"],
                    "kept": summary["bookings_kept_anonymised"],
                },
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Erase this family?"),
            "opts": self.model._meta,
            "profile": profile,
            "live_call": family_live_calls(profile).exists(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "erase_family",
        }
        return TemplateResponse(
            request, "admin/identity/visitorprofile/erase_confirmation.html", context
        )


@admin.register(GroupMember)
class GroupMemberAdmin(admin.ModelAdmin):
    list_display = ["lead", "member", "status", "invited_at", "accepted_at"]
    list_filter = ["status"]
    search_fields = ["lead__legal_name", "lead__user__email", "member__legal_name"]
    list_select_related = ["lead", "member"]
    readonly_fields = ["lead", "member", "invited_at", "accepted_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the lead invites; the member agrees with their own account


# --- Users: a visitor's account is erased, not deleted ---------------------------------

ERASE_INSTEAD = _(
    "%(email)s is a visitor's account: deleting it here would be refused by their "
    "bookings and would leave their photos and face data behind. Use “Erase this family” "
    "on their visitor record instead."
)


class AccountAdmin(UserAdmin):
    """Django's user admin, except that visitors' accounts go through family_erase."""

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = self.get_object(request, object_id)
        profile = VisitorProfile.objects.filter(user=user).first() if user else None
        if user is not None and profile is not None:
            self.message_user(request, ERASE_INSTEAD % {"email": user.email}, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:identity_visitorprofile_change", args=[profile.pk])
            )
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            delete_selected, name, description = actions["delete_selected"]  # type: ignore[misc]

            def guarded(modeladmin: Any, request: HttpRequest, queryset: QuerySet[User]) -> Any:
                visitors = list(
                    queryset.filter(visitor_profile__isnull=False).values_list("email", flat=True)
                )
                if visitors:
                    for email in visitors:
                        modeladmin.message_user(
                            request, ERASE_INSTEAD % {"email": email}, messages.ERROR
                        )
                    return None
                return delete_selected(modeladmin, request, queryset)

            actions["delete_selected"] = (guarded, name, description)
        return actions

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        # Only reached for accounts with no visitor profile (get_actions guards it).
        super().delete_queryset(request, queryset.filter(visitor_profile__isnull=True))


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AccountAdmin)
