"""Staff must use two-factor authentication, in this session, before any staff page opens."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from establishments.selectors import account_facts
from purplevisits.middleware import sign_in_url
from purplevisits.observability import security_event
from purplevisits.session_rules import Problem, needs_staff_rules, session_problem


def mfa_missing(user: object) -> bool:
    """True for staff, Django staff or superusers without an authenticator app.

    Terminal (laptop) accounts never need one.
    """
    facts = account_facts(user)
    return bool(facts is not None and not facts.has_totp and needs_staff_rules(user))


class StaffMfaRequiredMiddleware:
    """Two-factor rules for staff (``purplevisits.session_rules``).

    - No authenticator app yet: sent to allauth's TOTP set-up page. Only the two-factor
      pages themselves, signing out, reauthentication, email confirmation, static files
      and the health check stay open until then; setting it up in this session counts
      as passing it.
    - An authenticator app, but this session did not do the TOTP step (a password-only
      way in such as Django admin's own sign-in form used to be): signed out and sent
      to the site's sign-in, which asks for the code. Only static files and the health
      check are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        path = request.path_info
        if not getattr(user, "is_authenticated", False) or self._always_open(path):
            return self.get_response(request)
        problem = session_problem(user, request.session)
        if problem == Problem.MFA_NOT_PASSED:
            security_event("mfa_not_passed", request=request, path=path[:200])
            logout(request)
            messages.info(
                request,
                _("Staff accounts sign in with their authenticator app. Please sign in again."),
                fail_silently=True,
            )
            # Someone signing out is done: no point coming back to the sign-out page.
            back = "/" if path == reverse("account_logout") else request.get_full_path()
            return redirect(sign_in_url(back))
        if problem == Problem.MFA_MISSING and not self._exempt(path):
            if request.method == "GET":
                messages.info(
                    request,
                    _(
                        "Staff accounts need two-factor authentication. Set up an "
                        "authenticator app to continue."
                    ),
                    fail_silently=True,
                )
            return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        return any(path.startswith(prefix) for prefix in settings.IDENTITY_MFA_EXEMPT_PREFIXES)

    @staticmethod
    def _always_open(path: str) -> bool:
        static = "/" + settings.STATIC_URL.lstrip("/")
        return path.startswith(("/healthz", static))
