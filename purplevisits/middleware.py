"""Request ids and session lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from purplevisits.observability import new_request_id, request_id_var, security_event

SESSION_STARTED = "pv_session_started"
LAST_ACTIVITY = "pv_last_activity"
IS_STAFF = "pv_is_staff"


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

    The staff flag is set at sign-in (purplevisits.signals) so this costs no query.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            session = request.session
            started = session.setdefault(SESSION_STARTED, now)
            last = session.get(LAST_ACTIVITY, now)
            expired = None
            if now - started > settings.SESSION_ABSOLUTE_SECONDS:
                expired = "absolute"
            elif session.get(IS_STAFF) and now - last > settings.STAFF_IDLE_SECONDS:
                expired = "idle"
            if expired:
                security_event("session_expired", request=request, reason=expired)
                logout(request)
                messages.info(
                    request,
                    "You were signed out because you had been inactive for a while."
                    if expired == "idle"
                    else "Your session has ended. Please sign in again.",
                )
                return redirect(f"{settings.LOGIN_URL_PATH}?next={request.path}")
            # Writing on every request would save the session every time; a minute's
            # resolution is plenty for a 15-minute limit.
            if now - last > 60 or LAST_ACTIVITY not in session:
                session[LAST_ACTIVITY] = now
        return self.get_response(request)
