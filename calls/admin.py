"""Calls and their events in Django admin: read-only history.

A call's state changes only through calls.services (conditional updates, pushed to
the call page, the dashboard and the relay, and audited); an edit here would leave
them out of step. The events are the call's append-only record. Administrators look
calls up here; staff act on them from the dashboard.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from bookings.admin import ReadOnlyAdminMixin
from calls.models import Call, CallEvent


class CallEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CallEvent
    extra = 0
    fields = ["created_at", "kind", "role", "actor", "reason"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name_plural = _("Events")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallEvent]:
        return super().get_queryset(request).select_related("actor")


def _all_fields_read_only(model: Any) -> list[str]:
    return [field.name for field in model._meta.fields]


@admin.register(Call)
class CallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "booking_reference",
        "establishment",
        "status",
        "end_reason",
        "started_at",
        "ended_at",
    ]
    list_filter = ["status", "end_reason", "pause_reason", "booking__establishment"]
    search_fields = [
        "booking__short_reference",
        "booking__prisoner__prison_number",
        "booking__lead_visitor__legal_name",
        "booking__lead_visitor__user__email",
    ]
    list_select_related = ["booking__establishment"]
    date_hierarchy = "created_at"
    inlines = [CallEventInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _all_fields_read_only(self.model)

    @admin.display(description=_("booking"), ordering="booking__short_reference")
    def booking_reference(self, obj: Call) -> str:
        return obj.booking.short_reference

    @admin.display(description=_("establishment"), ordering="booking__establishment__name")
    def establishment(self, obj: Call) -> str:
        return str(obj.booking.establishment)


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "call", "kind", "role", "actor", "reason"]
    list_filter = ["kind", "role"]
    search_fields = ["call__booking__short_reference", "reason", "actor__email"]
    list_select_related = ["call", "actor"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _all_fields_read_only(self.model)
