"""allauth hooks: where people land after signing in."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse

from establishments.selectors import is_staff_member


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        user = request.user
        if getattr(user, "terminal", None) is not None:
            return super().get_login_redirect_url(request)
        if is_staff_member(user):
            return reverse("staff_home")
        if user.is_superuser:
            return reverse("admin:index")
        return reverse("me")
