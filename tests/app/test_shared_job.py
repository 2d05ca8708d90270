"""A job that several tasks share (the parts of a sweep) stays running until one of them finishes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.models import Job
from reviewapp.services.jobs import JobContinues, job_create, job_start
from reviewapp.tasks.base import job_task

pytestmark = pytest.mark.django_db


@job_task(queue="default")
def hand_over(job: Job) -> str:
    raise JobContinues


def test_a_task_that_hands_over_leaves_its_job_running():
    job = job_create(kind="sweep")

    hand_over(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert job.finished_at is None


def test_claiming_a_running_job_again_keeps_its_first_start():
    job = job_create(kind="sweep")
    job_start(job=job, task_id="part-1")
    first_start = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(started_at=first_start)

    assert job_start(job=job, task_id="part-2")

    assert job.started_at == first_start
    assert job.celery_task_id == "part-2"
