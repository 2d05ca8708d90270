"""With no configuration at all the project runs on SQLite and the filesystem broker under var/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARIABLES = {
    "DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS", "SECURE_COOKIES", "VAR_DIR", "LOG_LEVEL",
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
}))
"""


def load_settings(**env: str) -> dict:
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    clean["DJANGO_SETTINGS_MODULE"] = "reviewapp.settings"
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=REPO_ROOT,
        env={**clean, **env},
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
