"""Password sign-in attempts: a growing delay per account *and* address, no hard lock.

allauth's own ``login_failed`` limit keyed on the account alone let anyone lock a named
officer out (five wrong passwords from anywhere, then even the right one was refused).
Here the attempts are counted per (account, client address): someone guessing from
their own address slows only themselves, and the officer signs in from theirs.

- The first ``FREE_ATTEMPTS`` attempts go straight through.
- After that each attempt opens a wait (30 s, doubling, at most 15 minutes) during
  which the next is refused with a message saying when to try again.
- Across accounts, at most ``ADDRESS_FAILURES_PER_MINUTE`` failed attempts a minute
  from one address (spraying one password over many accounts).
- A correct password clears the account's count at that address.

The client address is allauth's (``ALLAUTH_TRUSTED_PROXY_COUNT``, from the
``TRUSTED_PROXY_COUNT`` setting, decides how much of ``X-Forwarded-For`` to trust).
Counters live in the default cache (Redis when ``REDIS_URL`` is set), so the limits
hold across web processes. Attempts are counted before the password is checked, so
parallel guesses cannot slip between the check and the count.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.utils.translation import ngettext

FREE_ATTEMPTS = 3
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 15 * 60
ADDRESS_FAILURES_PER_MINUTE = 10
FORGET_AFTER_SECONDS = 24 * 3600


class TooManyAttempts(Exception):
    def __init__(self, wait_seconds: float) -> None:
        super().__init__(wait_seconds)
        self.wait_seconds = max(1, math.ceil(wait_seconds))

    @property
    def message(self) -> str:
        if self.wait_seconds < 60:
            return ngettext(
                "Too many failed sign-in attempts. Try again in %(count)d second.",
                "Too many failed sign-in attempts. Try again in %(count)d seconds.",
                self.wait_seconds,
            ) % {"count": self.wait_seconds}
        minutes = math.ceil(self.wait_seconds / 60)
        return ngettext(
            "Too many failed sign-in attempts. Try again in %(count)d minute.",
            "Too many failed sign-in attempts. Try again in %(count)d minutes.",
            minutes,
        ) % {"count": minutes}


def delay_after(attempt: int) -> int:
    """Seconds the attempt numbered ``attempt`` (1-based) makes the next one wait."""
    if attempt <= FREE_ATTEMPTS:
        return 0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (attempt - FREE_ATTEMPTS - 1))


@dataclass(frozen=True)
class Attempt:
    account_key: str
    address_key: str


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _decr(key: str) -> None:
    with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
        cache.decr(key)


def attempt_begin(*, account: str, address: str) -> Attempt:
    """Count an attempt before the password is checked; TooManyAttempts when it must wait."""
    account = account.strip().lower()
    attempt = Attempt(
        account_key=f"pv:login:acct:{_hash(account, address)}",
        address_key=f"pv:login:addr:{_hash(address)}",
    )
    # Deadlines are kept as values and compared with the clock; the cache's expiry
    # only tidies up (a cache may keep a key a little past its timeout).
    now = time.time()
    failures = cache.get(f"{attempt.address_key}:n", 0)
    if failures >= ADDRESS_FAILURES_PER_MINUTE:
        since = cache.get(f"{attempt.address_key}:since", now)
        if since + 60 > now:
            raise TooManyAttempts(since + 60 - now)
        cache.delete_many([f"{attempt.address_key}:n", f"{attempt.address_key}:since"])
    number = _incr(f"{attempt.account_key}:n", FORGET_AFTER_SECONDS)
    if number > FREE_ATTEMPTS:
        delay = delay_after(number)
        wait_key = f"{attempt.account_key}:wait"
        until = cache.get(wait_key)
        if until is not None and until <= now:
            cache.delete(wait_key)  # that wait is over
        # add() is atomic: of parallel attempts, one claims the slot, the rest wait.
        if not cache.add(wait_key, now + delay, timeout=delay):
            _decr(f"{attempt.account_key}:n")  # a refused attempt is not a guess
            raise TooManyAttempts(cache.get(wait_key, now + 1) - now)
    return attempt


def attempt_failed(attempt: Attempt) -> None:
    key = f"{attempt.address_key}:n"
    if cache.add(key, 0, timeout=60):
        cache.set(f"{attempt.address_key}:since", time.time(), timeout=60)
    _incr(key, 60)


def attempt_succeeded(attempt: Attempt) -> None:
    cache.delete_many([f"{attempt.account_key}:n", f"{attempt.account_key}:wait"])
