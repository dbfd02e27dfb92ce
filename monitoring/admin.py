"""Monitoring alerts in Django admin: found and acknowledged, never edited.

Evidence snapshots (an unapproved face) are not shown here: staff view them from the
dashboard, where each view is audited. Acknowledging goes through the service, as on
the dashboard (recorded, pushed to every dashboard).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from monitoring.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "establishment",
        "kind",
        "side",
        "call",
        "has_snapshot",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = ["kind", "establishment", ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["call__booking__short_reference", "establishment__name"]
    list_select_related = ["establishment", "call", "acknowledged_by"]
    date_hierarchy = "created_at"
    exclude = ["snapshot"]
    actions = ["acknowledge"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "snapshot"] + ["has_snapshot"]

    @admin.display(description=_("snapshot"), boolean=True)
    def has_snapshot(self, obj: Alert) -> bool:
        return bool(obj.snapshot)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description=_("Acknowledge the selected alerts"), permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        from monitoring.services import alert_acknowledge

        done = sum(
            alert_acknowledge(alert_id=pk, actor=request.user)  # type: ignore[arg-type]
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request, _("%(count)s alerts acknowledged.") % {"count": done}, messages.SUCCESS
        )
