"""View guards for staff pages: the role is checked at the establishment in the URL."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404

from establishments.models import Establishment, StaffRole
from establishments.selectors import has_role_at, is_hq, staff_memberships

View = Callable[..., HttpResponseBase]


def role_required(minimum_role: str) -> Callable[[View], View]:
    """Staff view at ``<slug:code>``: passes ``establishment`` to the view.

    Anonymous users are sent to sign in; staff of another establishment get a 404 (they
    learn nothing about it); staff there with a lesser role, and people who are not
    staff at all, get a 403.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, code: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            establishment = get_object_or_404(Establishment, code=code)
            if not has_role_at(request.user, establishment, minimum_role):
                memberships = staff_memberships(request.user)
                # Staff elsewhere learn nothing about this establishment; HQ, who see
                # every establishment, are told plainly that their role cannot act.
                if (
                    memberships.exists()
                    and not memberships.filter(
                        Q(establishment=establishment) | Q(role=StaffRole.HQ)
                    ).exists()
                ):
                    raise Http404("No such establishment.")
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, establishment=establishment, **kwargs)

        return wrapped

    return decorator


def hq_required(view: View) -> View:
    """National, read-only pages: headquarters staff (and superusers) only."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_superuser or is_hq(request.user)):
            raise PermissionDenied("Headquarters staff only.")
        return view(request, *args, **kwargs)

    return wrapped
