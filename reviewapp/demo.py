"""Setting up the local demo: the database, the demo study when one can be made, and two log-ins."""

from __future__ import annotations

import json
import os
import secrets
from io import TextIOBase
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands

from reviewapp.services.users import user_create, user_set_password

DEMO_USERS = {"alice": "admin", "bob": "reviewer", "charlie": "reviewer"}


def demo_seed_if_empty(*, stdout: TextIOBase) -> bool:
    """Load the demo study with ``manage.py seed_demo`` when that command exists and there is no study yet."""
    if "seed_demo" not in get_commands():
        return False
    try:
        study_model = apps.get_model("reviewapp", "Study")
    except LookupError:
        study_model = None
    if study_model is not None and study_model.objects.exists():
        return False
    call_command("seed_demo", stdout=stdout)
    return True


def demo_logins(*, credentials_file: Path | None = None) -> dict[str, tuple[str, str]]:
    """Make sure the demo admin and reviewer exist; return username -> (role, password).

    Passwords are generated on the first run and kept in ``var/demo-logins.json`` so later runs print the
    same ones; a user whose password is not in that file gets a new one.
    """
    credentials_file = credentials_file or Path(settings.VAR_DIR) / "demo-logins.json"
    saved: dict[str, str] = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
    User = get_user_model()
    logins = {}
    for username, role in DEMO_USERS.items():
        user = User.objects.filter(username=username).first()
        password = saved.get(username)
        if user is None:
            password = password or secrets.token_urlsafe(9)
            user_create(username=username, email=f"{username}@example.org", password=password, role=role)
        elif password is None or not user.check_password(password):
            password = secrets.token_urlsafe(9)
            user_set_password(user=user, password=password)
        saved[username] = password
        logins[username] = (role, password)
    credentials_file.write_text(json.dumps(saved, indent=2))
    os.chmod(credentials_file, 0o600)
    return logins
