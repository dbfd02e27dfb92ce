"""Typed readers for environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value is
wrong, so a bad deployment stops at start-up instead of misbehaving later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    return (os.environ if environ is None else environ).get(name)


def env_str(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    value = _raw(name, environ)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of true/false, yes/no, on/off, 1/0."
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")
    return number


def env_list(
    name: str, default: list[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_json(name: str, default: Any, *, environ: Mapping[str, str] | None = None) -> Any:
    value = _raw(name, environ)
    if value is None or value.strip() == "":
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc.msg} at {exc.pos}.") from None


def parse_database_url(name: str, url: str, *, base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``postgres://user:pass@host:port/db`` or ``sqlite:///path`` → DATABASES["default"]."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise ImproperlyConfigured(f"{name}={url!r} names no database (…/DBNAME).")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name}={url!r} has an invalid port.") from None
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Under ASGI every sync view runs in a worker thread; persistent connections
            # would pile up one per thread and exhaust the server (measured in
            # bench/booking_rush.py), so each request opens and closes its own.
            "CONN_MAX_AGE": 0,
        }
    if scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc or not path or path == "/":
            raise ImproperlyConfigured(
                f"{name}={url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db."
            )
        path = path[1:] if not path.startswith("//") else path[1:]
        full = path if os.path.isabs(path) else os.path.join(base_dir, path)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": full}
    raise ImproperlyConfigured(
        f"{name}={url!r} is not a database URL: use postgres://user:password@host:port/name "
        "or sqlite:///path.db."
    )


def parse_redis_url(name: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"redis", "rediss", "unix"} or not (parts.hostname or parts.path):
        raise ImproperlyConfigured(f"{name}={url!r} is not a Redis URL: use redis://host:port/db.")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url!r} has an invalid port.") from None
    return url.strip()


def socket_sources(hosts: list[str], *, debug: bool) -> list[str]:
    """CSP ``connect-src`` entries for the site's own WebSocket hosts.

    ``'self'`` covers same-origin ``wss:`` in current browsers, but older Safari did not
    match WebSocket schemes against it; naming the hosts keeps calls working there
    without allowing sockets to any other host. ``.example.org`` (Django's subdomain
    form) becomes ``*.example.org``; ``*`` names no host and is left out, and so does an
    IPv6 literal such as ``[::1]``: CSP's host grammar has no form for one (Chromium
    reports the whole policy entry as an error on every page) and ``'self'`` covers
    the page's own origin. With
    ``debug`` (plain-HTTP development on any port) ``ws:`` is allowed to the same hosts.
    """
    sources = []
    for host in hosts:
        if not host or host == "*" or host.startswith("["):
            continue
        pattern = f"*{host}" if host.startswith(".") else host
        if debug:
            sources += [f"ws://{pattern}:*", f"wss://{pattern}:*"]
        else:
            sources.append(f"wss://{pattern}")
    return sources
