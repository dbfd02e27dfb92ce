"""Request ids and session lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from purplevisits.observability import new_request_id, request_id_var, security_event
from purplevisits.session_rules import (
    IS_STAFF,
    LAST_ACTIVITY,
    SESSION_STARTED,
    Problem,
    session_problem,
    touch_activity,
)

# Re-exported: the keys live with the rules that read them (purplevisits/session_rules.py).
__all__ = [
    "IS_STAFF",
    "LAST_ACTIVITY",
    "SESSION_STARTED",
    "RequestIdMiddleware",
    "SessionLifetimeMiddleware",
    "sign_in_url",
]


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class SessionLifetimeMiddleware:
    """Every session has an absolute limit; staff sessions also end after idle minutes.

    The rules are ``purplevisits.session_rules.session_problem``, the same the
    WebSocket consumers apply. The health check neither ends a session nor counts as
    use of it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not request.path_info.startswith("/healthz"):
            now = time.time()
            session = request.session
            session.setdefault(SESSION_STARTED, now)
            expired = session_problem(request.user, session, now=now)
            if expired in (Problem.IDLE, Problem.ABSOLUTE):
                security_event("session_expired", request=request, reason=str(expired))
                # logout() sends user_logged_out, which closes the session's sockets.
                logout(request)
                messages.info(
                    request,
                    _("You were signed out because you had been inactive for a while.")
                    if expired == Problem.IDLE
                    else _("Your session has ended. Please sign in again."),
                )
                return redirect(sign_in_url(request.get_full_path()))
            touch_activity(session, now=now)
        return self.get_response(request)


def sign_in_url(next_path: str) -> str:
    return f"{settings.LOGIN_URL_PATH}?{urlencode({'next': next_path})}"
