"""External services the integration tests use when they are reachable.

Locally a missing service skips its tests with a reason; with ``REQUIRE_SERVICES=1`` (set by ``.ci/run``) it
fails them, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

from reviewapp.config import env_bool

POSTGRES_URL = os.environ.get("POSTGRES_TEST_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def services_required() -> bool:
    return env_bool("REQUIRE_SERVICES")


def skip_or_fail(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(reason)


def postgres_url() -> str:
    """The URL of the PostgreSQL test server, or skip/fail when it does not answer."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), connect_timeout=3).close()
    except psycopg.Error as error:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}".strip())
    return POSTGRES_URL


def redis_url() -> str:
    """The URL of the Redis test server, or skip/fail when it does not answer."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


def chromium_path() -> str:
    """Debian's Chromium for browser tests, or skip/fail when it is not installed."""
    path = shutil.which("chromium")
    if path is None:
        skip_or_fail("Chromium is not installed (apt-get install chromium)")
    return path
