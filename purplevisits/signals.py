"""Security events from Django's auth signals."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from purplevisits.middleware import IS_STAFF, LAST_ACTIVITY, SESSION_STARTED
from purplevisits.observability import security_event


@receiver(user_logged_in)
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from establishments.selectors import is_staff_member

    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SESSION_STARTED] = now
        request.session[LAST_ACTIVITY] = now
        request.session[IS_STAFF] = bool(user.is_staff or is_staff_member(user))
    security_event("login", request=request, user_id=user.pk)


@receiver(user_logged_out)
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    security_event("logout", request=request, user_id=getattr(user, "pk", None))


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # Never log the password; the identifier is enough to spot an attack.
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    security_event("login_failed", request=request, identifier=identifier)
