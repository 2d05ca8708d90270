"""manage.py createreviewer adds a person who can log in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from reviewapp.selectors.users import user_is_admin, user_is_reviewer

pytestmark = pytest.mark.django_db


def test_it_creates_a_reviewer_with_the_given_password():
    call_command(
        "createreviewer", "bob", "bob@example.org", "--password", "a long enough secret", stdout=StringIO()
    )

    bob = get_user_model().objects.get(username="bob")
    assert bob.check_password("a long enough secret")
    assert user_is_reviewer(bob) and not user_is_admin(bob) and not bob.is_staff


def test_it_generates_and_prints_a_password_when_none_is_given_and_there_is_no_terminal():
    out = StringIO()

    call_command("createreviewer", "charlie", "charlie@example.org", stdout=out)

    password = out.getvalue().split("Password: ")[1].strip()
    assert get_user_model().objects.get(username="charlie").check_password(password)


def test_it_creates_an_admin_when_asked():
    call_command("createreviewer", "alice", "alice@example.org", "--admin", stdout=StringIO())

    alice = get_user_model().objects.get(username="alice")
    assert user_is_admin(alice) and alice.is_staff


def test_it_rejects_a_taken_username(bob):
    with pytest.raises(CommandError, match="taken"):
        call_command("createreviewer", "bob", "other@example.org", stdout=StringIO())


def test_it_rejects_a_weak_password():
    with pytest.raises(CommandError, match="too short"):
        call_command("createreviewer", "dave", "dave@example.org", "--password", "abc", stdout=StringIO())


def test_it_rejects_a_bad_email():
    with pytest.raises(CommandError, match="email"):
        call_command(
            "createreviewer", "erin", "not-an-email", "--password", "a long enough secret", stdout=StringIO()
        )
