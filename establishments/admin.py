from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timesince import timesince

from establishments import services
from establishments.models import (
    BlockedDate,
    Establishment,
    Feedback,
    Prisoner,
    RolloutStageChange,
    StaffMembership,
    Terminal,
    VisitSession,
)


class TerminalInline(admin.TabularInline):
    model = Terminal
    extra = 0
    fields = ["name", "location", "is_active", "user"]
    raw_id_fields = ["user"]


class VisitSessionInline(admin.TabularInline):
    model = VisitSession
    extra = 0
    fields = ["weekday", "start_time", "end_time", "valid_from", "valid_to"]


class BlockedDateInline(admin.TabularInline):
    model = BlockedDate
    extra = 0
    fields = ["date", "reason", "note"]


class RolloutStageChangeInline(admin.TabularInline):
    """Read-only: the history is written by the stage services, never by hand."""

    model = RolloutStageChange
    extra = 0
    fields = ["changed_at", "from_stage", "to_stage", "changed_by", "note"]
    readonly_fields = ["changed_at", "from_stage", "to_stage", "changed_by", "note"]
    can_delete = False
    verbose_name_plural = "Rollout stage history"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Establishment)
class EstablishmentAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "operator",
        "country",
        "rollout_stage",
        "time_in_stage",
        "request_mode",
    ]
    list_filter = ["rollout_stage", "kind", "country", "operator", "request_mode"]
    search_fields = ["name", "code", "town", "town_cy"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["rollout_stage_changed_at", "created_at", "updated_at"]
    inlines = [TerminalInline, VisitSessionInline, BlockedDateInline, RolloutStageChangeInline]
    actions = ["advance_rollout_stage"]
    fieldsets = [
        (None, {"fields": ["name", "code", "kind", "operator", "country", "time_zone"]}),
        ("Where it is", {"fields": ["town", "town_cy"]}),
        (
            "Visits team contact",
            {
                "description": "Shown to families on the help page and the booking portal.",
                "fields": ["visits_phone", "visits_email", "visits_hours", "visits_hours_cy"],
            },
        ),
        ("Roll-out", {"fields": ["rollout_stage", "rollout_stage_changed_at", "request_mode"]}),
        (
            "Calls and bookings",
            {
                "fields": [
                    "calls_per_month",
                    "call_minutes",
                    "changeover_minutes",
                    "min_notice_days",
                    "max_days_ahead",
                    "join_window_minutes",
                    "request_response_hours",
                ]
            },
        ),
        ("Visitors", {"fields": ["max_visitors", "max_adults", "adult_age"]}),
        (
            "Face checks",
            {
                "fields": [
                    "face_match_tolerance",
                    "face_checks_to_confirm",
                    "face_checks_per_second",
                    "face_auto_resume_seconds",
                    "face_resume_staff_only",
                    "face_check_children_under",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="In stage for")
    def time_in_stage(self, obj: Establishment) -> str:
        return timesince(obj.rollout_stage_changed_at, timezone.now())

    def save_model(self, request: HttpRequest, obj: Establishment, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        # A stage edited in the form goes through the service so the history records it.
        new_stage = obj.rollout_stage
        if change and "rollout_stage" in form.changed_data:
            obj.rollout_stage = form.initial["rollout_stage"]
            super().save_model(request, obj, form, change)
            services.establishment_set_stage(
                establishment=obj, stage=new_stage, changed_by=request.user, note="Changed in admin"
            )
            return
        super().save_model(request, obj, form, change)
        if not change:
            RolloutStageChange.objects.create(
                establishment=obj,
                from_stage="",
                to_stage=obj.rollout_stage,
                changed_by=request.user if request.user.is_authenticated else None,
                note="Created in admin",
            )

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_formset(request, form, formset, change)
        if formset.model is BlockedDate:
            # A day blocked here cancels the calls on it, like the staff page does.
            from bookings.services import blocked_date_apply

            for blocked_date in formset.new_objects + [obj for obj, _ in formset.changed_objects]:
                blocked_date_apply(blocked_date=blocked_date, actor=request.user)

    @admin.action(description="Move to the next rollout stage")
    def advance_rollout_stage(
        self, request: HttpRequest, queryset: QuerySet[Establishment]
    ) -> None:
        moved, stayed = [], []
        for establishment in queryset:
            if services.establishment_advance_stage(
                establishment=establishment, changed_by=request.user
            ):
                moved.append(f"{establishment.name} → {establishment.get_rollout_stage_display()}")
            else:
                stayed.append(establishment.name)
        if moved:
            self.message_user(request, "Moved: " + "; ".join(moved), messages.SUCCESS)
        if stayed:
            self.message_user(
                request, "Already live, not moved: " + ", ".join(stayed), messages.WARNING
            )


@admin.register(RolloutStageChange)
class RolloutStageChangeAdmin(admin.ModelAdmin):
    list_display = ["establishment", "from_stage", "to_stage", "changed_at", "changed_by", "note"]
    list_filter = ["to_stage"]
    search_fields = ["establishment__name"]
    date_hierarchy = "changed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    list_display = ["name", "establishment", "location", "is_active", "user"]
    list_filter = ["is_active", "establishment__rollout_stage"]
    search_fields = ["name", "establishment__name"]
    autocomplete_fields = ["establishment"]
    raw_id_fields = ["user"]
    actions = ["create_login"]

    @admin.action(description="Create the laptop's sign-in (or set a new password)")
    def create_login(self, request: HttpRequest, queryset: QuerySet[Terminal]) -> None:
        # The laptop's own account can only list and join this terminal's calls
        # (calls.middleware). The password is shown once here and never stored in clear.
        from calls.services import terminal_create_login

        for terminal in queryset:
            user, password = terminal_create_login(terminal_id=terminal.pk)
            self.message_user(
                request,
                f"{terminal}: sign in as {user.email} with password {password} "
                "(shown once: write it down now).",
                messages.SUCCESS,
            )


@admin.register(VisitSession)
class VisitSessionAdmin(admin.ModelAdmin):
    list_display = ["establishment", "weekday", "start_time", "end_time", "valid_from", "valid_to"]
    list_filter = ["weekday"]
    search_fields = ["establishment__name"]
    autocomplete_fields = ["establishment"]


@admin.register(BlockedDate)
class BlockedDateAdmin(admin.ModelAdmin):
    list_display = ["establishment", "date", "reason", "note"]
    list_filter = ["reason"]
    search_fields = ["establishment__name"]
    date_hierarchy = "date"
    autocomplete_fields = ["establishment"]

    def save_model(self, request: HttpRequest, obj: BlockedDate, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        if not change or "date" in form.changed_data:
            # Through the bookings service: the calls on that day are cancelled,
            # the allowance returned and the families emailed.
            from bookings.services import blocked_date_apply

            blocked_date_apply(blocked_date=obj, actor=request.user)


@admin.register(Prisoner)
class PrisonerAdmin(admin.ModelAdmin):
    list_display = [
        "prison_number",
        "last_name",
        "first_name",
        "establishment",
        "location",
        "status",
    ]
    list_filter = ["status", "establishment"]
    search_fields = ["prison_number", "last_name", "first_name"]
    autocomplete_fields = ["establishment"]
    list_select_related = ["establishment"]


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "establishment", "role", "created_at"]
    list_filter = ["role", "establishment"]
    search_fields = ["user__email", "user__username", "establishment__name"]
    autocomplete_fields = ["establishment"]
    raw_id_fields = ["user"]
    list_select_related = ["user", "establishment"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """What people sent with the footer's form: read here, marked read, never edited."""

    list_display = ["created_at", "topic", "establishment", "short_message", "reply_to", "read"]
    list_filter = ["read", "topic", "language", "establishment__country"]
    search_fields = ["message", "reply_to", "establishment__name"]
    date_hierarchy = "created_at"
    list_select_related = ["establishment"]
    readonly_fields = [
        "created_at",
        "topic",
        "message",
        "establishment",
        "reply_to",
        "language",
        "user",
    ]
    fields = [*readonly_fields, "read"]
    actions = ["mark_read"]

    @admin.display(description="Message")
    def short_message(self, obj: Feedback) -> str:
        return obj.message if len(obj.message) <= 80 else obj.message[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Mark as read")
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        done = queryset.update(read=True)
        self.message_user(request, f"{done} marked as read.", messages.SUCCESS)
