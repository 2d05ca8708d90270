"""With no configuration at all the project runs on SQLite and the filesystem broker under var/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARIABLES = {
    "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS", "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "CSP_REPORT_ONLY", "LOGIN_FAILURES_PER_ACCOUNT",
    "LOGIN_FAILURES_PER_ADDRESS", "LOGIN_LOCKOUT_SECONDS", "CLIENT_ADDRESS_HEADER", "VAR_DIR", "LOG_LEVEL",
}  # fmt: skip

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "database": settings.DATABASES["default"]["ENGINE"],
    "database_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "broker_folder": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in"),
    "media_root": str(settings.MEDIA_ROOT),
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "secret_key": settings.SECRET_KEY,
    "cache": settings.CACHES["default"]["BACKEND"],
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
}))
"""


def clean_environment(**env: str) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    clean["DJANGO_SETTINGS_MODULE"] = "reviewapp.settings"
    return {**clean, **env}


def load_settings(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=REPO_ROOT,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_load_with_only_the_embedded_defaults():
    loaded = load_settings()
    var = REPO_ROOT / "var"

    assert loaded["database"] == "django.db.backends.sqlite3"
    assert loaded["database_name"] == str(var / "db.sqlite3")
    assert loaded["broker"] == "filesystem://localhost//"
    assert loaded["broker_folder"] == str(var / "broker" / "queue")
    assert loaded["media_root"] == str(var / "media")
    assert loaded["debug"] is False
    assert loaded["allowed_hosts"] == ["127.0.0.1", "localhost", "[::1]"]
    assert loaded["secret_key"] == (var / "secret_key").read_text().strip()
    # Plain HTTP on one machine: no HTTPS-only cookies, redirect or HSTS; the cache is the process's memory.
    assert loaded["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert loaded["session_cookie_secure"] is False
    assert loaded["ssl_redirect"] is False
    assert loaded["hsts_seconds"] == 0


def test_the_environment_overrides_the_defaults(tmp_path):
    loaded = load_settings(
        DATABASE_URL="postgres://reviewer:secret@db.example.org:5432/review",
        CELERY_BROKER_URL="redis://broker.example.org:6379/0",
        MEDIA_ROOT=str(tmp_path / "media"),
        SECRET_KEY="from-the-environment",
        DEBUG="1",
        ALLOWED_HOSTS="review.example.org, .example.org",
        VAR_DIR=str(tmp_path / "var"),
    )

    assert loaded["database"] == "django.db.backends.postgresql"
    assert loaded["database_name"] == "review"
    assert loaded["broker"] == "redis://broker.example.org:6379/0"
    assert loaded["media_root"] == str(tmp_path / "media")
    assert loaded["secret_key"] == "from-the-environment"
    assert loaded["debug"] is True
    assert loaded["allowed_hosts"] == ["review.example.org", ".example.org"]


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-key-Zq8v3LmN0pRt7WxY2bC5dF9gH1jK4sU6eA",
    "ALLOWED_HOSTS": "review.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://review.example.org",
    "SECURE_COOKIES": "1",
    "DATABASE_URL": "postgres://review:secret@db.example.org:5432/review",
    "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
    "CACHE_URL": "redis://redis.example.org:6379/1",
}


def test_production_settings_turn_on_https_only_cookies_redirect_and_hsts(tmp_path):
    loaded = load_settings(**PRODUCTION, VAR_DIR=str(tmp_path / "var"))

    assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["session_cookie_secure"] is True
    assert loaded["csrf_cookie_secure"] is True
    assert loaded["ssl_redirect"] is True
    assert loaded["hsts_seconds"] >= 365 * 24 * 3600


def test_hsts_and_the_redirect_can_be_set_on_their_own(tmp_path):
    loaded = load_settings(
        **PRODUCTION, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="3600", VAR_DIR=str(tmp_path / "var")
    )

    assert loaded["ssl_redirect"] is False
    assert loaded["hsts_seconds"] == 3600


def run_deploy_check(**env: str) -> subprocess.CompletedProcess:
    # Fails on warnings too; no server is contacted (the check only reads the settings).
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deployment_check_is_clean_with_production_settings(tmp_path):
    result = run_deploy_check(**PRODUCTION, VAR_DIR=str(tmp_path / "var"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_the_deployment_check_warns_when_web_processes_would_not_share_log_in_failures(tmp_path):
    env = {name: value for name, value in PRODUCTION.items() if name != "CACHE_URL"}

    result = run_deploy_check(**env, VAR_DIR=str(tmp_path / "var"))

    assert result.returncode != 0
    assert "reviewapp.W001" in result.stderr
