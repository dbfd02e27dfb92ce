"""A cap on HTTP request bodies, applied before Django reads a byte of them.

Under ASGI, Django's handler reads the whole body (into memory, then a temporary file)
before any middleware or view runs, and the identity forms' 10 MB-per-photo check comes
after that: a 40 MB body used to be read, spooled and parsed only to be refused.
``RequestBodyLimit`` wraps the HTTP application: a declared ``Content-Length`` over
``REQUEST_BODY_MAX_BYTES`` is answered 413 at once, without reading the body, and a body
sent without a length (chunked) is cut off with the same answer as soon as it passes the
cap. Django is then told the client went away, so it stops where it is.

The web server still receives what the client sends: the cap belongs in the proxy too
(``client_max_body_size`` in nginx, the load balancer's body limit), with the same
value; see docs/security.md and the README's configuration table.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

Scope = dict[str, Any]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django answers a malformed length itself
    return None


def _megabytes(size: int) -> int:
    return max(1, round(size / (1024 * 1024)))


def render_refusal(limit: int) -> bytes:
    """The 413 page in the site's layout (no request: nothing of Django has run)."""
    from django.template import loader

    context = {
        "SERVICE_NAME": settings.SERVICE_NAME,
        "limit_mb": _megabytes(limit),
        "photo_mb": _megabytes(settings.IDENTITY_UPLOAD_MAX_BYTES),
    }
    try:
        return loader.render_to_string("413.html", context).encode()
    except Exception:  # noqa: BLE001 - an error page must never fail itself
        return b"<h1>Error 413: what you sent is too large</h1>"


class RequestBodyLimit:
    """ASGI middleware for ``http`` scopes; everything else passes through untouched."""

    def __init__(self, application: Any, *, max_bytes: int | None = None) -> None:
        self.application = application  # named as Django's static files wrapper names it
        self.max_bytes = max_bytes

    @property
    def limit(self) -> int:
        return self.max_bytes or settings.REQUEST_BODY_MAX_BYTES

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        limit = self.limit
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return
        received = 0
        refused = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        await self.application(scope, limited_receive, send)

    async def _refuse(self, send: Any, limit: int) -> None:
        body = await sync_to_async(render_refusal, thread_sensitive=False)(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cache-control", b"no-store"),
                    (
                        b"content-security-policy",
                        b"default-src 'none'; style-src 'self'; img-src 'self'; "
                        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                    ),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
