"""Error pages rendered in the site layout, with a status a client can rely on."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.translation import gettext as _

from purplevisits.observability import security_event


def _render(request: HttpRequest, template: str, status: int) -> HttpResponse:
    body: str
    try:
        body = loader.render_to_string(template, {"request": request}, request=request)
    except Exception:  # noqa: BLE001 - an error page must never fail itself
        body = f"<h1>{_('Error')} {status}</h1>"
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    security_event("permission_denied", request=request, detail=str(exception or "")[:200])
    return _render(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # A database that is down or restarting is a temporary outage, not a bug: answer
    # 503 with Retry-After so clients and proxies try again (bench/faults.py drill).
    exception = sys.exc_info()[1]
    unavailable = isinstance(exception, OperationalError | InterfaceError)
    template, status = ("503.html", 503) if unavailable else ("500.html", 500)
    # No request context: the failure may have been in a context processor.
    body: str
    try:
        body = loader.render_to_string(template)
    except Exception:  # noqa: BLE001
        body = f"<h1>{_('Something went wrong')}</h1>"
    response = HttpResponse(body, status=status)
    if unavailable:
        response["Retry-After"] = "30"
    return response
