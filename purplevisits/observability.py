"""Structured logs: JSON lines carrying the request id, and security events."""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
security_logger = logging.getLogger("purplevisits.security")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def new_request_id(incoming: str | None) -> str:
    """Keep a proxy's X-Request-ID when it is safe to log; otherwise make one."""
    if incoming and _SAFE_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def client_ip(request: Any) -> str:
    # Behind the production proxy REMOTE_ADDR is the proxy; it sets X-Forwarded-For.
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


def security_event(event: str, *, request: Any = None, **fields: Any) -> None:
    """One line per security-relevant event (login, failure, denial, staff action)."""
    user = getattr(request, "user", None)
    security_logger.info(
        event,
        extra={
            "event": event,
            "user_id": getattr(user, "pk", None)
            if getattr(user, "is_authenticated", False)
            else None,
            "ip": client_ip(request),
            "path": getattr(request, "path", ""),
            **fields,
        },
    )
