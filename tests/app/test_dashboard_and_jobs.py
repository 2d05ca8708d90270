"""The admin dashboard says what each study waits for and what runs now; the jobs page lists every job."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reviewapp.models import Job, Sweep
from reviewapp.selectors.studies import study_next_step
from reviewapp.services.jobs import job_create, job_fail, job_progress, job_start
from tests.factories import (
    LabRunFactory,
    ProjectionFactory,
    ReviewAssignmentFactory,
    ReviewSetFactory,
    StudyFactory,
    SweepFactory,
)

pytestmark = pytest.mark.django_db


def study_with_ranges(**fields):
    return StudyFactory(ranges_path="studies/ranges.npz", **fields)


def test_the_next_step_follows_the_pipeline(bob):
    study = StudyFactory()
    assert "style ranges" in study_next_step(study=study).text

    study = study_with_ranges()
    assert study_next_step(study=study).action == "Upload cases"

    projection = ProjectionFactory(case__study=study)
    step = study_next_step(study=study)
    assert (step.action, step.url_name, step.pk) == ("Launch sweep", "sweep-new", study.pk)

    sweep = SweepFactory(study=study, status=Sweep.Status.CANCELLED)
    step = study_next_step(study=study)
    assert (step.action, step.url_name, step.pk) == ("Resume sweep", "sweep", sweep.pk)

    Sweep.objects.filter(pk=sweep.pk).update(status=Sweep.Status.SUCCEEDED, num_selected=3)
    step = study_next_step(study=study)
    assert (step.action, step.url_name) == ("Create review set", "review-set-new")
    assert "3 dimension(s)" in step.text

    review_set = ReviewSetFactory(sweep=sweep, study=study)
    assert study_next_step(study=study).action == "Assign readers"

    ReviewAssignmentFactory(review_set=review_set, reader=bob)
    step = study_next_step(study=study)
    assert (step.action, step.url_name, step.pk) == ("Results so far", "review-set-results", review_set.pk)
    assert projection.pk


def test_the_dashboard_shows_next_steps_and_running_jobs(alice, alice_client):
    study = study_with_ranges(name="Chest study")
    ProjectionFactory(case__study=study)
    job = job_create(kind="sweep", created_by=alice)
    job_start(job=job)
    job_progress(job=job, done=1, total=4, message="1 of 3 units")
    running = SweepFactory(study=study, status=Sweep.Status.RUNNING, job=job)

    page = alice_client.get(reverse("home")).content.decode()

    assert "What to do next" in page
    assert f"Sweep {running.pk} is running." in page
    assert "Running now" in page
    assert f'data-job-progress="{reverse("job-progress", args=[job.pk])}"' in page
    assert f'href="{reverse("sweep", args=[running.pk])}">Sweep {running.pk} · Chest study</a>' in page
    assert f'href="{reverse("jobs")}"' in page


def test_an_idle_dashboard_says_nothing_runs(alice_client):
    page = alice_client.get(reverse("home")).content.decode()

    assert "No job is queued or running." in page


def test_the_jobs_page_lists_jobs_with_what_they_work_on_and_filters(alice, alice_client):
    run = LabRunFactory()
    lab_job = job_create(kind="counterfactual", created_by=alice, message="Grad-CAM")
    type(run).objects.filter(pk=run.pk).update(job=lab_job)
    failed = job_create(kind="projection", created_by=alice)
    job_start(job=failed)
    job_fail(job=failed, error="RuntimeError: out of memory")

    page = alice_client.get(reverse("jobs")).content.decode()

    assert f'href="{reverse("lab-run", args=[run.pk])}">Lab run {run.pk}' in page
    assert "RuntimeError: out of memory" in page
    assert "<code>interactive</code>" in page
    only_failed = alice_client.get(reverse("jobs") + "?status=failed").content.decode()
    assert "RuntimeError: out of memory" in only_failed and "Grad-CAM" not in only_failed
    # An unknown filter shows everything rather than failing.
    assert alice_client.get(reverse("jobs") + "?status=nonsense").status_code == 200


def test_a_reviewer_sees_only_their_own_jobs(alice, bob, bob_client):
    job_create(kind="sweep", created_by=alice, message="sweep of alice")
    job_create(kind="counterfactual", created_by=bob, message="run of bob")

    page = bob_client.get(reverse("jobs")).content.decode()

    assert "run of bob" in page and "sweep of alice" not in page
    assert Job.objects.count() == 2
