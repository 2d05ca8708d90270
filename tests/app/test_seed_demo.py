"""``manage.py seed_demo`` registers the demo study, imports its cases, creates the log-ins, queues the work."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from reviewapp.models import Case, Job, Projection, Study
from reviewapp.selectors.users import user_is_admin, user_is_reviewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(tiny_models, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo log-ins file goes here, not into the real var/
    generator, classifier = tiny_models
    options = dict(
        generator=str(generator), classifier=str(classifier), heldout=3, review=1, steps=7, batch=2
    )
    call_command("seed_demo", ranges_samples=200, **options)
    return options


def test_it_registers_the_demo_study_with_few_projection_steps(seeded):
    study = Study.objects.get()
    assert study.projection_steps == 7 and study.projection_batch_size == 2
    assert study.ranges_job.status == Job.Status.PENDING


def test_it_imports_the_demo_cases_with_their_labels_and_splits(seeded):
    assert Case.objects.filter(split=Case.Split.HELDOUT).count() == 3
    assert Case.objects.filter(split=Case.Split.REVIEW).count() == 1
    assert not Case.objects.filter(label__isnull=True).exists()


def test_the_projections_wait_for_the_style_ranges(seeded):
    assert Projection.objects.filter(status=Projection.Status.PENDING, job__isnull=True).count() == 4


def test_it_creates_an_admin_and_two_reviewers(seeded):
    users = {user.username: user for user in get_user_model().objects.all()}
    assert user_is_admin(users["alice"])
    assert user_is_reviewer(users["bob"]) and user_is_reviewer(users["charlie"])
    assert Study.objects.get().created_by == users["alice"]


def test_running_it_again_does_nothing(seeded, capsys):
    call_command("seed_demo", **{k: v for k, v in seeded.items() if k in ("generator", "classifier")})

    assert Study.objects.count() == 1 and Case.objects.count() == 4
    assert "exists already" in capsys.readouterr().out
