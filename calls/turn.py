"""TURN credentials for one participant of one call (coturn's TURN REST API).

coturn runs with ``use-auth-secret`` and ``static-auth-secret=TURN_SECRET``: it accepts
a username ``<expiry unix time>:<name>`` whose password is
``base64(HMAC-SHA1(TURN_SECRET, username))`` until that time. The web app hands each
participant such a pair when it renders a call, monitor or dashboard page, valid until
the call can last no longer (its slot's end) plus a margin, so no password is shared
between browsers and none outlives the call by more than the margin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

# A participant who opens the page just before the slot's end still gets time to connect.
MARGIN_SECONDS = 15 * 60
# Pages that are not about one call (the dashboard) get this long.
DEFAULT_SECONDS = 12 * 3600


def _call_end(call: Any) -> datetime | None:
    # The slot's end bounds the call (a call's own ends_at is never later).
    for source in (getattr(call, "booking", None), call):
        ends_at = getattr(source, "ends_at", None) if source is not None else None
        if ends_at is not None:
            return ends_at
    return None


def turn_credentials(*, name: str, expires: int, secret: str) -> tuple[str, str]:
    """(username, password) that coturn's use-auth-secret accepts until ``expires``."""
    username = f"{expires}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(user: Any, call: Any | None = None) -> list[dict[str, Any]]:
    """``settings.ICE_SERVERS`` plus, with ``TURN_URLS``, TURN credentials of ``user``
    valid for ``call`` (or ``DEFAULT_SECONDS`` without one)."""
    servers: list[dict[str, Any]] = list(settings.ICE_SERVERS)
    if not settings.TURN_URLS or not settings.TURN_SECRET:
        return servers
    now = timezone.now()
    end = _call_end(call) if call is not None else None
    if end is None or end < now:
        expires = int(now.timestamp()) + (DEFAULT_SECONDS if call is None else MARGIN_SECONDS)
    else:
        expires = int(end.timestamp()) + MARGIN_SECONDS
    # The user's id, never a name or an email: coturn logs usernames.
    name = f"u{getattr(user, 'pk', None) or 'anon'}"
    if call is not None:
        name += f"-c{str(call.pk)[:8]}"
    username, password = turn_credentials(name=name, expires=expires, secret=settings.TURN_SECRET)
    servers.append({"urls": list(settings.TURN_URLS), "username": username, "credential": password})
    return servers
