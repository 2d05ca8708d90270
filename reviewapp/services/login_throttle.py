"""Log-in throttling: repeated wrong passwords lock an account, and a client address, for a while.

Failures are counted in Django's cache, per account (the username as typed, case-folded) and per client
address, in a window of ``LOGIN_LOCKOUT_SECONDS`` that starts at the first failure. When an account reaches
``LOGIN_FAILURES_PER_ACCOUNT`` failures, or an address ``LOGIN_FAILURES_PER_ADDRESS``, it is locked for
``LOGIN_LOCKOUT_SECONDS``: every log-in attempt for it is refused without checking the password, even a right
one, and the refusal says how long to wait. A successful log-in clears the account's count.

Every way in counts: the log-in page and the Django admin's log-in through their forms, the API's token log-in
through its view, and any ``authenticate()`` that fails through the ``user_login_failed`` signal.

Several web processes must share the cache (``CACHE_URL=redis://...``); with the default local-memory cache
each process counts on its own. While the cache cannot be reached, log-in works unthrottled and each attempt logs
an error.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

KEY_PREFIX = "login-throttle"
logger = logging.getLogger(__name__)
Result = TypeVar("Result")


def _cache_may_fail(function: Callable[..., Result]) -> Callable[..., Result | None]:
    """A cache that cannot be reached (Redis down) leaves log-in working, unthrottled, with an error logged:
    people keep their access while the cache is repaired."""

    @wraps(function)
    def wrapped(*args, **kwargs) -> Result | None:
        try:
            return function(*args, **kwargs)
        except Exception:
            logger.exception("Log-in throttling is off: the cache cannot be reached.")
            return None

    return wrapped


def now() -> float:
    """The clock of the lockouts (tests move it forward)."""
    return time.time()


@dataclass(frozen=True)
class Lockout:
    """A refused log-in: how long until the next attempt is taken."""

    seconds: int

    @property
    def message(self) -> str:
        return (
            "Too many failed log-in attempts. For your account's safety, log-in is paused: "
            f"try again in {wait_text(self.seconds)}."
        )


def wait_text(seconds: int) -> str:
    """``seconds`` in words, rounded up to whole minutes above one minute ("45 seconds", "15 minutes")."""
    if seconds <= 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def client_address(request: HttpRequest | None) -> str:
    """The address of the client that sent ``request``.

    ``REMOTE_ADDR`` unless ``CLIENT_ADDRESS_HEADER`` names a header that a trusted proxy in front of the app
    sets (``X-Forwarded-For``: its last entry, the one that proxy appended; ``X-Real-IP``).
    """
    if request is None:
        return ""
    header = getattr(settings, "CLIENT_ADDRESS_HEADER", "")
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if entries:
            return entries[-1][:64]
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


def _subjects(username: str | None, address: str) -> list[tuple[str, int]]:
    """(cache key stem, failure limit) of the account and of the address (hashed: keys stay short and clean)."""
    subjects = []
    if username:
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        subjects.append((f"{KEY_PREFIX}:account:{digest}", settings.LOGIN_FAILURES_PER_ACCOUNT))
    if address:
        digest = hashlib.sha256(address.encode()).hexdigest()[:32]
        subjects.append((f"{KEY_PREFIX}:address:{digest}", settings.LOGIN_FAILURES_PER_ADDRESS))
    return subjects


@_cache_may_fail
def login_lockout(*, username: str | None, request: HttpRequest | None) -> Lockout | None:
    """The lockout that refuses a log-in as ``username`` from ``request``'s client now, or None."""
    longest = 0.0
    for stem, _limit in _subjects(username, client_address(request)):
        until = cache.get(f"{stem}:locked")
        if until is not None:
            longest = max(longest, float(until) - now())
    if longest <= 0:
        return None
    return Lockout(seconds=max(1, math.ceil(longest)))


@_cache_may_fail
def login_failure_record(*, username: str | None, request: HttpRequest | None) -> Lockout | None:
    """Count one failed log-in; the lockout it starts, if it reaches a limit, else None."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    started = None
    for stem, limit in _subjects(username, client_address(request)):
        count_key = f"{stem}:failures"
        cache.add(count_key, 0, timeout=window)
        try:
            failures = cache.incr(count_key)
        except ValueError:  # expired between add and incr
            cache.set(count_key, 1, timeout=window)
            failures = 1
        if failures >= limit:
            cache.set(f"{stem}:locked", now() + window, timeout=window + 60)
            cache.delete(count_key)
            started = Lockout(seconds=window)
    return started


@_cache_may_fail
def login_success_record(*, username: str | None) -> None:
    """A right password outside a lockout: the account's failures are forgiven (the address's are not)."""
    for stem, _limit in _subjects(username, ""):
        cache.delete(f"{stem}:failures")


def login_unlock(*, username: str | None = None, address: str | None = None) -> list[str]:
    """Lift the lockout (and forget the counted failures) of an account and/or a client address before it
    runs out, for an admin who has checked who was locked out. Returns what was locked ("account bob",
    "address 10.0.0.7"). Unlike log-in itself this does not fail open: an unreachable cache raises."""
    lifted = []
    for stem, _limit in _subjects(username, address or ""):
        kind = "account" if ":account:" in stem else "address"
        name = username if kind == "account" else address
        if cache.get(f"{stem}:locked") is not None:
            lifted.append(f"{kind} {name}")
        cache.delete_many([f"{stem}:locked", f"{stem}:failures"])
    return lifted
