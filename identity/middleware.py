"""Staff must set up two-factor authentication before any staff page opens."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from establishments.selectors import account_facts


def mfa_missing(user: object) -> bool:
    """True for staff, Django staff or superusers without an authenticator app.

    Terminal (laptop) accounts never need one.
    """
    facts = account_facts(user)
    if facts is None or facts.is_terminal or facts.has_totp:
        return False
    return bool(
        getattr(user, "is_superuser", False) or getattr(user, "is_staff", False) or facts.is_member
    )


class StaffMfaRequiredMiddleware:
    """Sends staff without an authenticator app to allauth's TOTP set-up page.

    Only the two-factor pages themselves, signing out, reauthentication, email
    confirmation, static files and the health check stay open until then.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not self._exempt(request.path_info) and mfa_missing(user):
            if request.method == "GET":
                messages.info(
                    request,
                    "Staff accounts need two-factor authentication. Set up an "
                    "authenticator app to continue.",
                    fail_silently=True,
                )
            return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        return any(path.startswith(prefix) for prefix in settings.IDENTITY_MFA_EXEMPT_PREFIXES)
