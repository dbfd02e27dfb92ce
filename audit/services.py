"""Writes of the audit log: one function, called inside the action's transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from audit.models import AuditEntry
from establishments.models import Establishment


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    establishment: Establishment | None = None,
    target: models.Model | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record a staff action (or a refused one). Call it inside the action's transaction."""
    user = actor if isinstance(actor, User) else None
    label = (user.email or user.get_username()) if user else "system"
    return AuditEntry.objects.create(
        actor=user,
        actor_label=label[:254],
        establishment=establishment,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        reason=reason,
        detail=detail or {},
    )
