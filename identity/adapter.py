"""allauth hooks: where people land after signing in, and how wrong passwords are slowed."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse
from django.utils import translation

from establishments.selectors import is_staff_member
from identity import login_throttle


class AccountAdapter(DefaultAccountAdapter):
    _login_attempt: login_throttle.Attempt | None = None

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        user = request.user
        if getattr(user, "terminal", None) is not None:
            return super().get_login_redirect_url(request)
        if is_staff_member(user):
            return reverse("staff_home")
        if user.is_superuser:
            return reverse("admin:index")
        return reverse("me")

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """allauth's emails (confirm address, reset password…) in the reader's language:
        the one on their visitor profile, else the one the request is answered in."""
        from identity.models import VisitorProfile

        language = (
            VisitorProfile.objects.filter(user__email__iexact=email)
            .values_list("language", flat=True)
            .first()
        ) or translation.get_language()
        with translation.override(language):
            super().send_mail(template_prefix, email, context)

    # --- password attempts (identity/login_throttle.py) ---------------------------------
    # allauth's pre_authenticate applies ACCOUNT_RATE_LIMITS["login_failed"] keyed on the
    # account alone (a lock anyone can trigger); it is replaced, not extended. That
    # limit still guards the two-factor code step, keyed on the user.

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        account = str(credentials.get("email") or credentials.get("username") or "")
        try:
            self._login_attempt = login_throttle.attempt_begin(
                account=account, address=self.get_client_ip(request)
            )
        except login_throttle.TooManyAttempts as refusal:
            raise forms.ValidationError(refusal.message, code="too_many_login_attempts") from None

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        self._login_attempt = None
        user = super().authenticate(request, **credentials)
        attempt = getattr(self, "_login_attempt", None)
        if user is not None and attempt is not None:
            login_throttle.attempt_succeeded(attempt)
        return user

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        attempt = getattr(self, "_login_attempt", None)
        if attempt is not None:
            login_throttle.attempt_failed(attempt)
