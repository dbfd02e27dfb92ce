"""A terminal's account (the prison laptop) can only list and join its own calls."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _


class TerminalAccountMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and self._is_terminal(user):
            path = request.path_info
            allowed = (
                path.startswith(reverse("calls:terminal"))
                or path == reverse("account_logout")
                # The call page's JavaScript messages, and the language switch.
                or path in (reverse("javascript-catalog"), reverse("set_language"))
                or path.startswith("/" + settings.STATIC_URL.lstrip("/"))
            )
            if not allowed:
                if request.method in ("GET", "HEAD"):
                    return redirect("calls:terminal")
                raise PermissionDenied(_("This laptop can only be used for its calls."))
        return self.get_response(request)

    @staticmethod
    def _is_terminal(user: object) -> bool:
        from establishments.selectors import account_facts

        facts = account_facts(user)
        return bool(facts and facts.is_terminal)
