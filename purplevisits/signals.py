"""Security events from Django's and allauth's auth signals, and what they end.

- sign-in records the session's start, last activity and staff flag;
- allauth's two-factor step (TOTP or recovery code), or setting up the authenticator
  app, marks *this session* as having passed two-factor (``session_rules``);
- signing out (which the idle and absolute limits also go through) closes the sockets
  opened with that session; a password change or deactivation of a user closes all of
  that user's sockets (``realtime.sockets_close_for_*``). A socket of the session that
  changed its own password is closed too and reconnects with the new session hash.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.signals import authentication_step_completed
from allauth.mfa.signals import authenticator_added
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from purplevisits.observability import security_event
from purplevisits.realtime import sockets_close_for_session, sockets_close_for_user
from purplevisits.session_rules import (
    IS_STAFF,
    LAST_ACTIVITY,
    SESSION_STARTED,
    mark_mfa_passed,
)


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
    session = getattr(request, "session", None)
    # Sent before the session is flushed: its key still names its sockets' group.
    sockets_close_for_session(session_key=getattr(session, "session_key", None), reason="logout")


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # Never log the password; the identifier is enough to spot an attack.
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    security_event("login_failed", request=request, identifier=identifier)


@receiver(authentication_step_completed)
def on_authentication_step(
    sender: Any, request: Any, method: str, user: Any, **kwargs: Any
) -> None:
    """allauth's two-factor step of this sign-in (it runs before Django's login(),
    whose session key rotation keeps the mark) or a two-factor reauthentication."""
    if method == "mfa" and request is not None and hasattr(request, "session"):
        mark_mfa_passed(request.session, user)
        security_event("mfa_passed", request=request, user_id=user.pk)


@receiver(authenticator_added)
def on_authenticator_added(
    sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any
) -> None:
    """Setting up the authenticator app in this session proves it just as well."""
    from allauth.mfa.models import Authenticator

    if authenticator.type == Authenticator.Type.TOTP and request is not None:
        mark_mfa_passed(request.session, user)


@receiver(post_init, sender=settings.AUTH_USER_MODEL)
def remember_loaded_credentials(sender: Any, instance: Any, **kwargs: Any) -> None:
    # __dict__, not attributes: a deferred field must not cost a query here.
    instance._pv_loaded = (instance.__dict__.get("password"), instance.__dict__.get("is_active"))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A changed password (any path: allauth, admin, set_password) or a deactivation
    ends every socket of the user."""
    if created:
        return
    old_password, old_active = getattr(instance, "_pv_loaded", (None, None))
    password = instance.__dict__.get("password")
    active = instance.__dict__.get("is_active")
    changed = old_password is not None and password is not None and password != old_password
    deactivated = active is False and old_active is not False
    if changed or deactivated:
        sockets_close_for_user(
            user_id=instance.pk, reason="password_changed" if changed else "deactivated"
        )
    instance._pv_loaded = (password, active)
