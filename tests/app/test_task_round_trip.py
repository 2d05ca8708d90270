"""A task goes through a real worker process and updates its Job row."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from reviewapp.celery import app as celery_app
from reviewapp.models import Job
from reviewapp.services.jobs import job_create, job_enqueue
from reviewapp.tasks import job_selftest_task
from tests.helpers.services import postgres_url, redis_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_until_finished(job: Job, *, timeout_s: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job} did not finish within {timeout_s} s")


@pytest.mark.timeout(180)
def test_a_task_runs_in_a_real_worker_and_updates_its_job(transactional_db, celery_worker):
    expected_vendor = os.environ.get("ROUND_TRIP_EXPECTS_DATABASE")
    if expected_vendor:
        assert connection.vendor == expected_vendor
        assert celery_app.conf.broker_url.startswith(os.environ["ROUND_TRIP_EXPECTS_BROKER"])

    with transaction.atomic():
        job = job_create(kind="selftest")
        task_id = job_enqueue(job=job, task=job_selftest_task, kwargs={"steps": 3})

    job = wait_until_finished(job)
    assert job.status == Job.Status.SUCCEEDED, (job.error, celery_worker.log())
    assert job.progress == 1.0
    assert job.message == "Self-test finished 3 steps."
    assert job.celery_task_id == task_id
    assert job.started_at <= job.finished_at


@pytest.mark.timeout(180)
def test_a_failing_task_records_its_error(transactional_db, celery_worker):
    with transaction.atomic():
        job = job_create(kind="selftest")
        job_enqueue(job=job, task=job_selftest_task, kwargs={"steps": 1, "fail": True})

    job = wait_until_finished(job)
    assert job.status == Job.Status.FAILED
    assert job.error == "RuntimeError: The self-test was asked to fail."


@pytest.mark.timeout(300)
def test_the_round_trip_also_works_over_redis_with_postgresql():
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url(),
        "CELERY_BROKER_URL": redis_url(),
        "ROUND_TRIP_EXPECTS_DATABASE": "postgresql",
        "ROUND_TRIP_EXPECTS_BROKER": "redis://",
    }
    test_id = (
        f"{Path(__file__).relative_to(REPO_ROOT)}::test_a_task_runs_in_a_real_worker_and_updates_its_job"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test_id, "-p", "no:cacheprovider", "-q"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
