"""A job moves pending -> running -> succeeded | failed | cancelled, and never leaves a finished state."""

from __future__ import annotations

import pytest

from reviewapp.models import Job
from reviewapp.services.jobs import (
    job_abort_fn,
    job_create,
    job_fail,
    job_progress,
    job_progress_fn,
    job_request_cancel,
    job_start,
    job_succeed,
)
from reviewapp.services.leases import lease_begin

pytestmark = pytest.mark.django_db


def test_a_new_job_is_pending_with_no_progress():
    job = job_create(kind="projection")

    assert job.status == Job.Status.PENDING
    assert job.progress == 0.0


def test_it_refuses_a_job_without_a_kind():
    with pytest.raises(ValueError, match="kind"):
        job_create(kind="")


def test_a_started_job_runs_and_succeeds_with_full_progress():
    job = job_create(kind="projection")

    assert job_start(job=job, task_id="abc")
    assert job.status == Job.Status.RUNNING and job.started_at is not None
    assert job_succeed(job=job, message="Done.")
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 1.0
    assert job.celery_task_id == "abc"


def test_progress_is_the_ratio_of_done_to_total_clipped_to_0_1():
    job = job_create(kind="sweep")
    job_start(job=job)

    job_progress(job=job, done=3, total=4, message="3 of 4")
    assert Job.objects.get(pk=job.pk).progress == 0.75
    job_progress(job=job, done=9, total=4)
    assert Job.objects.get(pk=job.pk).progress == 1.0
    job_progress(job=job, done=1, total=0)
    assert Job.objects.get(pk=job.pk).progress == 0.0


def test_a_progress_fn_writes_at_most_every_interval_but_always_the_last_step():
    job = job_create(kind="sweep")
    job_start(job=job)
    progress_fn = job_progress_fn(job, min_interval_s=3600)

    progress_fn(1, 10, "first")
    progress_fn(2, 10, "second")
    assert Job.objects.get(pk=job.pk).message == "first"
    progress_fn(10, 10, "last")
    assert Job.objects.get(pk=job.pk).message == "last"


def test_a_finished_job_cannot_be_started_again():
    job = job_create(kind="projection")
    job_start(job=job)
    job_fail(job=job, error="ValueError: bad checkpoint")

    assert not job_start(job=job)
    assert job.status == Job.Status.FAILED
    assert job.error == "ValueError: bad checkpoint"


def test_a_running_job_can_be_claimed_again_after_its_worker_died():
    job = job_create(kind="projection")
    job_start(job=job, task_id="first")

    assert job_start(job=job, task_id="first")


def test_cancelling_a_pending_job_cancels_it_at_once():
    job = job_create(kind="sweep")

    job_request_cancel(job=job)

    assert job.status == Job.Status.CANCELLED
    assert not job_start(job=job)


def test_cancelling_a_running_job_turns_its_abort_fn_true():
    job = job_create(kind="sweep")
    lease_begin(job=job, task_id="part-1", task_name="selftest", kwargs={})  # a live task holds it
    job_start(job=job)
    abort_fn = job_abort_fn(job, min_interval_s=0)
    assert not abort_fn()

    job_request_cancel(job=job)

    assert abort_fn()
    assert job.status == Job.Status.RUNNING


def test_a_succeeded_job_is_not_failed_afterwards():
    job = job_create(kind="sweep")
    job_start(job=job)
    job_succeed(job=job)

    assert not job_fail(job=job, error="late")
    assert job.status == Job.Status.SUCCEEDED
