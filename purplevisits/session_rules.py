"""What is wrong with this user's session right now: one answer for every way in.

HTTP (``purplevisits.middleware.SessionLifetimeMiddleware``,
``identity.middleware.StaffMfaRequiredMiddleware``) and WebSockets
(``purplevisits.socket_sessions``) ask ``session_problem`` and act on its answer, so a
rule added here holds on every way in.

Staff are establishment members, Django staff and superusers; a terminal (laptop)
account never is. For staff a session counts as "two-factor passed" only when *this
session* completed the TOTP (or recovery code) step of allauth's sign-in, or set up the
authenticator app itself (``mark_mfa_passed``, called from ``purplevisits.signals``):
having an authenticator is not enough, or Django admin's own sign-in (or any other
password-only way in) would skip it.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from enum import StrEnum
from typing import Any

from django.conf import settings

SESSION_STARTED = "pv_session_started"
LAST_ACTIVITY = "pv_last_activity"
IS_STAFF = "pv_is_staff"
# The id of the user whose two-factor step this session completed.
MFA_PASSED = "pv_mfa_passed"
# Writing the session on every request would save it every time; a minute's
# resolution is plenty for a 15-minute limit.
ACTIVITY_RESOLUTION_SECONDS = 60


class Problem(StrEnum):
    NONE = "none"
    SIGNED_OUT = "signed_out"  # the session no longer signs this user in (sockets)
    MFA_MISSING = "mfa_missing"  # staff without an authenticator app
    MFA_NOT_PASSED = "mfa_not_passed"  # staff whose session skipped the TOTP step
    IDLE = "idle"  # staff session unused for STAFF_IDLE_SECONDS
    ABSOLUTE = "absolute"  # any session older than SESSION_ABSOLUTE_SECONDS


def needs_staff_rules(user: object) -> bool:
    """Staff members, Django staff and superusers; never a terminal's account."""
    from establishments.selectors import account_facts

    facts = account_facts(user)
    if facts is None or facts.is_terminal:
        return False
    return bool(
        facts.is_member or getattr(user, "is_superuser", False) or getattr(user, "is_staff", False)
    )


def mfa_passed(session: MutableMapping[str, Any], user: object) -> bool:
    return session.get(MFA_PASSED) == str(getattr(user, "pk", ""))


def mark_mfa_passed(session: MutableMapping[str, Any], user: object) -> None:
    session[MFA_PASSED] = str(getattr(user, "pk", ""))


def session_problem(
    user: object, session: MutableMapping[str, Any], *, now: float | None = None
) -> Problem:
    """The first rule this signed-in ``user``'s ``session`` breaks, or ``Problem.NONE``.

    Read-only: callers decide what to do (sign out, send to set-up, close a socket).
    A session without the timestamps that sign-in records counts as just started.
    """
    if not getattr(user, "is_authenticated", False):
        return Problem.NONE
    now = time.time() if now is None else now
    started = session.get(SESSION_STARTED, now)
    last = session.get(LAST_ACTIVITY, now)
    if now - started > settings.SESSION_ABSOLUTE_SECONDS:
        return Problem.ABSOLUTE
    staff = needs_staff_rules(user)
    if (staff or session.get(IS_STAFF)) and now - last > settings.STAFF_IDLE_SECONDS:
        return Problem.IDLE
    if staff:
        from establishments.selectors import account_facts

        facts = account_facts(user)
        if facts is not None and not facts.has_totp:
            return Problem.MFA_MISSING
        if not mfa_passed(session, user):
            return Problem.MFA_NOT_PASSED
    return Problem.NONE


def touch_activity(session: MutableMapping[str, Any], *, now: float | None = None) -> bool:
    """Record use of the session (at a minute's resolution); True when it changed."""
    now = time.time() if now is None else now
    last = session.get(LAST_ACTIVITY)
    if last is None or now - last > ACTIVITY_RESOLUTION_SECONDS:
        session[LAST_ACTIVITY] = now
        return True
    return False
