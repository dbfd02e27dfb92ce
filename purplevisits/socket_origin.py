"""The WebSocket Origin check: scheme, host and port must match an allowed origin.

Browsers send cookies with a WebSocket handshake from any page, so without this check a
page on another site could open a family's or an officer's socket (cross-site WebSocket
hijacking). channels' ``AllowedHostsOriginValidator`` compared the host only: an https
site accepted ``http://127.0.0.1:9``. Here an ``Origin`` is allowed when it is exactly

- one of ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.org`` covers the domain and its
  subdomains, on the scheme's default port unless the entry names one), or
- the request's own origin: its scheme (``wss`` → ``https``, ``ws`` → ``http``, or
  ``SECURE_PROXY_SSL_HEADER`` when that setting names a header a proxy sets), the host
  of its ``Host`` header, which must be one of ``ALLOWED_HOSTS``, and that header's
  port (the scheme's default when it names none).

This is the rule Django's CSRF check applies to an HTTPS form post. A handshake without
an ``Origin`` is refused too, as before (SIGNALLING.md: "The Origin header must match an
allowed host"); browsers always send one, and the project's own test peers do. A refusal
is a 403 to the handshake and a ``websocket_origin_refused`` security event.
"""

from __future__ import annotations

import re
from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from purplevisits.observability import security_event

DEFAULT_PORTS = {"http": 80, "https": 443}
_ORIGIN = re.compile(r"(https?)://([^/?#@\s]+)")

Origin = tuple[str, str, int]  # scheme, host (lower case, IPv6 in brackets), port


def parse_origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of a serialised origin, or None if it is not one."""
    match = _ORIGIN.fullmatch(value.strip().lower())
    if match is None:
        return None
    scheme, netloc = match.groups()
    return _with_port(scheme, netloc)


def _with_port(scheme: str, netloc: str) -> Origin | None:
    host, port = split_domain_port(netloc)
    if not host or len(port) > 5:
        return None
    number = int(port) if port else DEFAULT_PORTS[scheme]
    if not 0 < number < 65536:
        return None
    return scheme, host, number


def _headers(scope: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin1").lower(), []).append(value.decode("latin1"))
    return found


def request_scheme(scope: dict[str, Any], headers: dict[str, list[str]]) -> str:
    """``http`` or ``https``, as Django's ``request.scheme`` would say for this request."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        # Django names it as in META (HTTP_X_FORWARDED_PROTO); only the dashed spelling
        # counts, as Django drops header names with underscores.
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower()
        values = headers.get(name)
        if values:
            first = values[0].split(",", 1)[0].strip()
            return "https" if first == secure_value else "http"
    return "https" if scope.get("scheme", "ws") in ("wss", "https") else "http"


def request_origin(scope: dict[str, Any], headers: dict[str, list[str]]) -> Origin | None:
    """The request's own origin, or None when its host is not one of ALLOWED_HOSTS."""
    hosts = headers.get("host", [])
    if settings.USE_X_FORWARDED_HOST and headers.get("x-forwarded-host"):
        hosts = headers["x-forwarded-host"]
    if len(hosts) != 1:
        return None
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host
    origin = _with_port(request_scheme(scope, headers), hosts[0].strip().lower())
    if origin is None or not validate_host(origin[1], allowed):
        return None
    return origin


def _trusted(origin: Origin, pattern: str) -> bool:
    """Does ``origin`` match one entry of CSRF_TRUSTED_ORIGINS?"""
    scheme, _, netloc = pattern.strip().lower().partition("://")
    if scheme not in DEFAULT_PORTS or not netloc:
        return False
    if netloc.startswith("*."):
        entry = _with_port(scheme, netloc[2:])
        return (
            entry is not None
            and entry[0] == origin[0]
            and entry[2] == origin[2]
            and is_same_domain(origin[1], "." + entry[1])
        )
    return _with_port(scheme, netloc) == origin


def origin_refusal(scope: dict[str, Any]) -> str | None:
    """Why this handshake's Origin is refused, or None when it is allowed."""
    headers = _headers(scope)
    values = headers.get("origin", [])
    if not values:
        return "no Origin header"
    if len(values) > 1:
        return "several Origin headers"
    origin = parse_origin(values[0])
    if origin is None:
        return "not a web origin"
    if any(_trusted(origin, pattern) for pattern in settings.CSRF_TRUSTED_ORIGINS):
        return None
    if origin == request_origin(scope, headers):
        return None
    return "not an allowed origin"


class OriginValidator:
    """ASGI middleware in front of the websocket stack: refuses foreign origins."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.application(scope, receive, send)
        refusal = origin_refusal(scope)
        if refusal is None:
            return await self.application(scope, receive, send)
        headers = _headers(scope)
        client = scope.get("client") or ("", 0)
        security_event(
            "websocket_origin_refused",
            reason=refusal,
            origin=",".join(headers.get("origin", []))[:200],
            host=",".join(headers.get("host", []))[:200],
            path=str(scope.get("path", ""))[:200],
            ip=str(client[0]),
        )
        # Closing before accepting: daphne answers the handshake with 403.
        return await WebsocketDenier()(scope, receive, send)
