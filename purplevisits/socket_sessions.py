"""Session rules for WebSockets: the same answer as HTTP, at connect and while open.

``SessionRulesMixin`` gives a consumer:

- ``session_open()`` at connect: joins the socket to its session's and its user's
  groups (``purplevisits.realtime``), then applies ``session_rules.session_problem``
  to a fresh read of the session: signed in (and still, after a password change or
  deactivation), two-factor passed for staff, idle and absolute limits. False means
  refuse with 4401.
- a watcher task that re-reads the session every ``RECHECK_SECONDS`` (60) and closes
  the socket (4401) once a rule fails, for sessions that end with no request at all
  (an idle officer's dashboard).
- ``session.end`` messages, pushed by ``purplevisits.signals`` on logout (which the
  HTTP expiry also goes through), and on a password change or deactivation of the
  user: the socket closes at once (4401).
- ``session_activity()`` for deliberate client messages (a staff member
  acknowledging an alert, refreshing, controlling or watching a call): a re-check,
  then the session's last activity is written back, as an HTTP request would.

Idle time is measured from the session's last activity: HTTP requests and those
deliberate socket messages. Automatic traffic (heartbeats, pushes) never counts, so a
dashboard left open on an unattended screen is closed once its session is idle, while
an officer working the dashboard keeps it open. The socket never ends the session
itself; the next HTTP request signs it out.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user

from purplevisits.observability import security_event
from purplevisits.realtime import session_group, user_group
from purplevisits.session_rules import Problem, session_problem, touch_activity

logger = logging.getLogger(__name__)

CLOSE_SESSION = 4401
# SIGNALLING.md: a long-lived socket re-checks its session at least every minute.
RECHECK_SECONDS = 60.0


def _fresh_session(scope: dict[str, Any]) -> Any:
    """A new read of the scope's session (what HTTP requests wrote since), or None."""
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if not key:
        return None
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    return store_class(session_key=key)


def scope_session_problem(scope: dict[str, Any], *, touch: bool = False) -> Problem:
    """``session_problem`` for a socket's scope; SIGNED_OUT when the session no longer
    signs in the scope's user (logged out, expired, password changed, deactivated).

    With ``touch``, a session with no problem records the activity. Runs in a thread.
    """
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return Problem.SIGNED_OUT
    store = _fresh_session(scope)
    if store is None:
        return Problem.SIGNED_OUT
    # Django's own check: backend, session hash (password), is_active.
    current = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    if not current.is_authenticated or current.pk != user.pk:
        return Problem.SIGNED_OUT
    problem = session_problem(current, store)
    if problem == Problem.NONE and touch and touch_activity(store):
        try:
            store.save()
        except Exception:  # the session was deleted meanwhile (signed out)
            logger.info("socket activity: session gone before it was saved")
            return Problem.SIGNED_OUT
    return problem


def scope_groups(scope: dict[str, Any]) -> list[str]:
    groups = []
    key = getattr(scope.get("session"), "session_key", None)
    if key:
        groups.append(session_group(key))
    user = scope.get("user")
    if getattr(user, "is_authenticated", False):
        groups.append(user_group(user.pk))  # type: ignore[union-attr]
    return groups


class SessionRulesMixin:
    """For ``AsyncWebsocketConsumer`` subclasses (see the module docstring)."""

    scope: dict[str, Any]
    channel_layer: Any
    channel_name: str
    session_groups: list[str]
    session_watcher: asyncio.Task[None] | None = None

    async def session_open(self) -> bool:
        """Join the session's groups, then check it; False: refuse with 4401."""
        # Join first: a logout between the check and the join would otherwise be missed.
        self.session_groups = scope_groups(self.scope)
        for group in self.session_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        problem = await database_sync_to_async(scope_session_problem)(self.scope)
        if problem != Problem.NONE:
            self._session_log(problem, "connect")
            await self.session_close()
            return False
        self.session_watcher = asyncio.ensure_future(self._session_watch())
        return True

    async def session_close(self) -> None:
        """Leave the groups and stop the watcher (from ``disconnect``)."""
        if self.session_watcher is not None:
            self.session_watcher.cancel()
            self.session_watcher = None
        for group in getattr(self, "session_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.session_groups = []

    async def session_recheck(self, *, touch: bool = False) -> bool:
        """Apply the rules now; on a failure close the socket (4401) and say False."""
        problem = await database_sync_to_async(scope_session_problem)(self.scope, touch=touch)
        if problem == Problem.NONE:
            return True
        self._session_log(problem, "open")
        await self.session_refuse()
        return False

    async def session_activity(self) -> bool:
        """A deliberate message from the person: re-check, then count it as use."""
        return await self.session_recheck(touch=True)

    async def session_refuse(self) -> None:
        """Close for a session that may no longer be used; consumers may override."""
        await self.close(code=CLOSE_SESSION)  # type: ignore[attr-defined]

    async def session_end(self, event: dict[str, Any]) -> None:
        """``session.end`` from the channel layer: logout, password change, deactivation."""
        security_event("socket_session_ended", reason=str(event.get("reason", ""))[:40])
        await self.session_refuse()

    async def _session_watch(self) -> None:
        try:
            while True:
                await asyncio.sleep(RECHECK_SECONDS)
                if not await self.session_recheck():
                    return
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("socket session watcher failed")

    def _session_log(self, problem: Problem, when: str) -> None:
        path = str(self.scope.get("path", ""))[:200]
        security_event("socket_session_refused", reason=str(problem), when=when, path=path)
