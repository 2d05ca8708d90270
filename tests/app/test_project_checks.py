"""Django's system checks pass and the migrations match the models."""

from __future__ import annotations

from importlib import import_module
from io import StringIO

import pytest
from django.core.management import call_command


def test_manage_py_check_is_clean():
    out = StringIO()

    call_command("check", stdout=out)

    assert "no issues" in out.getvalue()


@pytest.mark.django_db
def test_the_migrations_are_in_sync_with_the_models():
    # Exits with status 1 when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


@pytest.mark.django_db
def test_a_data_migration_creates_the_admins_and_reviewers_groups():
    from django.apps import apps
    from django.contrib.auth.models import Group

    # Transactional tests flush the tables, so run the migration's function rather than trust leftovers.
    Group.objects.all().delete()
    import_module("reviewapp.migrations.0002_role_groups").create_role_groups(apps, None)

    assert set(Group.objects.values_list("name", flat=True)) == {"admins", "reviewers"}
