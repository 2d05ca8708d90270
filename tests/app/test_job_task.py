"""A job task claims its job, runs, and records success, failure or cancellation (run in-process here)."""

from __future__ import annotations

import pytest

from reviewapp.celery import ProjectTask
from reviewapp.celery import app as celery_app
from reviewapp.models import Job
from reviewapp.services.jobs import job_create, job_enqueue, job_request_cancel, job_start
from reviewapp.tasks import job_selftest_task
from reviewapp.tasks.base import job_task

pytestmark = pytest.mark.django_db


def test_a_job_task_is_acknowledged_late_and_requeued_when_its_worker_dies():
    assert isinstance(job_selftest_task, ProjectTask)
    assert job_selftest_task.acks_late is True
    assert job_selftest_task.reject_on_worker_lost is True
    assert celery_app.amqp.router.route({}, job_selftest_task.name)["queue"].name == "default"


def test_it_refuses_an_unknown_queue():
    with pytest.raises(ValueError, match="Unknown queue"):
        job_task(queue="fast")


def test_it_runs_and_succeeds():
    job = job_create(kind="selftest")

    job_selftest_task(job.pk, steps=2, step_seconds=0)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.message == "Self-test finished 2 steps."


def test_it_records_a_failure_and_reraises():
    job = job_create(kind="selftest")

    with pytest.raises(RuntimeError):
        job_selftest_task(job.pk, steps=1, step_seconds=0, fail=True)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "asked to fail" in job.error


def test_it_stops_when_cancelled_while_running():
    job = job_create(kind="selftest")
    job_start(job=job)
    job_request_cancel(job=job)

    job_selftest_task(job.pk, steps=2, step_seconds=0)

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_it_ignores_a_message_for_a_finished_or_missing_job():
    job = job_create(kind="selftest")
    job_request_cancel(job=job)

    job_selftest_task(job.pk)
    job_selftest_task(987654)

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_enqueueing_sends_the_message_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(job_selftest_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    job = job_create(kind="selftest")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task_id = job_enqueue(job=job, task=job_selftest_task, kwargs={"steps": 5})
        assert sent == []

    assert len(callbacks) == 1
    assert sent == [{"args": [job.pk], "kwargs": {"steps": 5}, "task_id": task_id}]
    assert Job.objects.get(pk=job.pk).celery_task_id == task_id


def test_a_job_step_records_a_failure_and_lets_it_go_on():
    from reviewapp.services.jobs import job_step

    failures = []
    with pytest.raises(ValueError, match="bad input"), job_step(failed=failures.append):
        raise ValueError("bad input")

    assert failures == ["ValueError: bad input"]


def test_a_job_step_turns_an_abort_into_a_cancelled_job():
    from reviewapp.services.jobs import JobCancelled, job_step

    cancelled, failures = [], []
    with pytest.raises(JobCancelled), job_step(failed=failures.append, cancelled=lambda: cancelled.append(1)):
        raise InterruptedError

    assert cancelled == [1] and failures == []


def test_a_job_step_lets_a_continuing_job_through():
    from reviewapp.services.jobs import JobContinues, job_step

    failures = []
    with pytest.raises(JobContinues), job_step(failed=failures.append):
        raise JobContinues

    assert failures == []


def test_every_task_services_send_by_name_is_declared_on_its_queue():
    from reviewapp.celery import TASK_QUEUES
    from reviewapp.services.jobs import Tasks, registered_task

    for name in Tasks.names():
        assert registered_task(name).name == name
        # Lab runs are short and somebody waits for them: they never queue behind a sweep.
        assert TASK_QUEUES[name] == ("interactive" if name == Tasks.LAB_RUN else "gpu")
