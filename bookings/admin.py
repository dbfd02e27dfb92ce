"""Bookings in Django admin: found by reference, prison number or visitor; read-only.

Every change to a booking has a service that keeps the rules, tells the family and
writes the audit log (cancel, move: the staff booking pages; a visitor's erasure:
"Erase this family"). An edit here would skip all three, so nothing is editable:
administrators find a booking here and change it on the staff pages.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking, BookingVisitor, normalise_short_reference


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class BookingVisitorInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BookingVisitor
    extra = 0
    fields = ["profile", "dependant"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    verbose_name_plural = _("Visitors on the call")

    def get_queryset(self, request: HttpRequest) -> QuerySet[BookingVisitor]:
        return super().get_queryset(request).select_related("profile", "dependant")


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "short_reference",
        "establishment",
        "prisoner",
        "lead_visitor",
        "starts_at",
        "status",
        "origin",
    ]
    list_filter = ["status", "origin", "cancel_reason", "establishment"]
    search_fields = [
        "short_reference",
        "prisoner__prison_number",
        "prisoner__last_name",
        "lead_visitor__legal_name",
        "lead_visitor__user__email",
    ]
    list_select_related = ["establishment", "prisoner", "lead_visitor", "terminal"]
    date_hierarchy = "starts_at"
    inlines = [BookingVisitorInline]
    exclude = ["idempotency_key"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            field.name
            for field in self.model._meta.fields
            if field.name not in ("id", "idempotency_key")
        ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Booking], search_term: str
    ) -> tuple[QuerySet[Booking], bool]:
        # A reference as read out or printed ("acd3-f7kx") finds its booking.
        reference = normalise_short_reference(search_term)
        if reference:
            by_reference = queryset.filter(short_reference=reference)
            if by_reference.exists():
                return by_reference, False
        return super().get_search_results(request, queryset, search_term)
