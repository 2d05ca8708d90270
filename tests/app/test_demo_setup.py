"""make demo's set-up: log-ins that stay the same between runs, the demo study only when it can be made."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model

from reviewapp.demo import demo_logins, demo_seed_if_empty
from reviewapp.selectors.users import user_is_admin, user_is_reviewer

pytestmark = pytest.mark.django_db


def test_it_creates_alice_the_admin_and_bob_the_reviewer(tmp_path):
    logins = demo_logins(credentials_file=tmp_path / "logins.json")

    User = get_user_model()
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert logins["alice"][0] == "admin" and user_is_admin(alice)
    assert logins["bob"][0] == "reviewer" and user_is_reviewer(bob)
    assert alice.check_password(logins["alice"][1])
    assert bob.check_password(logins["bob"][1])


def test_a_second_run_prints_the_same_log_ins(tmp_path):
    first = demo_logins(credentials_file=tmp_path / "logins.json")

    assert demo_logins(credentials_file=tmp_path / "logins.json") == first


def test_a_lost_password_is_replaced(tmp_path):
    demo_logins(credentials_file=tmp_path / "logins.json")
    (tmp_path / "logins.json").unlink()

    logins = demo_logins(credentials_file=tmp_path / "logins.json")

    assert get_user_model().objects.get(username="bob").check_password(logins["bob"][1])


def test_it_seeds_only_when_a_seed_demo_command_exists(monkeypatch):
    called = []
    monkeypatch.setattr("reviewapp.demo.get_commands", lambda: {"seed_demo": "reviewapp"})
    monkeypatch.setattr("reviewapp.demo.call_command", lambda name, **kwargs: called.append(name))

    assert demo_seed_if_empty(stdout=StringIO())
    assert called == ["seed_demo"]

    monkeypatch.setattr("reviewapp.demo.get_commands", lambda: {})
    assert not demo_seed_if_empty(stdout=StringIO())
