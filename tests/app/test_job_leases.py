"""Leases: a running task renews its lease; the reaper redoes, fails or cancels the work of a lost worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.models import Job, JobLease, LabRun, Projection, Sweep, SweepUnit
from reviewapp.services.jobs import Tasks, job_create, job_request_cancel, job_start
from reviewapp.services.leases import lease_begin, lease_end, lease_heartbeat, leases_reap
from reviewapp.services.projections import projection_retry_failed
from reviewapp.services.sweeps import sweep_cancel, sweep_unit_claim, sweep_unit_finish
from reviewapp.tasks import job_selftest_task
from tests.factories import CaseFactory, LabRunFactory, ProjectionFactory, StudyFactory, SweepFactory

pytestmark = pytest.mark.django_db

State = JobLease.State


@pytest.fixture(autouse=True)
def leases(settings) -> None:
    settings.JOB_LEASE_SECONDS = 30
    settings.JOB_MAX_ATTEMPTS = 3


def running_job(
    *, task_name: str = Tasks.SWEEP_RUN_UNITS, kwargs: dict | None = None, task_id="task-1"
) -> Job:
    job = job_create(kind="test")
    assert lease_begin(job=job, task_id=task_id, task_name=task_name, kwargs=kwargs or {})
    assert job_start(job=job, task_id=task_id)
    return job


def silence(task_id: str, *, seconds: float = 31) -> None:
    """The worker running ``task_id`` stopped renewing its lease ``seconds`` ago."""
    JobLease.objects.filter(task_id=task_id).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


@pytest.fixture
def sweep_with_units():
    sweep = SweepFactory(status=Sweep.Status.RUNNING)
    for index in range(3):
        SweepUnit.objects.create(sweep=sweep, index=index, image_start=index, image_stop=index + 1,
                                 dim_start=0, dim_stop=64)  # fmt: skip
    return sweep


def test_a_live_lease_is_left_alone():
    job = running_job()
    silence("task-1", seconds=29)

    assert leases_reap() == 0
    assert JobLease.objects.get(task_id="task-1").state == State.RUNNING
    assert job_of(job).status == Job.Status.RUNNING


def test_a_lost_sweep_part_gives_back_its_unit_and_is_sent_again(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    held = sweep_unit_claim(sweep=sweep_with_units, task_id="task-1")
    silence("task-1")

    assert leases_reap(job=job) == 1

    assert SweepUnit.objects.get(pk=held.pk).status == SweepUnit.Status.PENDING
    assert JobLease.objects.get(task_id="task-1").state == State.LOST
    again = JobLease.objects.get(job=job, state=State.QUEUED)
    assert (again.attempt, again.task_name, again.kwargs) == (
        2,
        Tasks.SWEEP_RUN_UNITS,
        {"sweep_pk": sweep_with_units.pk},
    )
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert "worker was lost" in job.message and "attempt 2 of 3" in job.message
    assert leases_reap() == 0  # reclaimed once only


def test_a_lost_part_cannot_record_a_unit_it_no_longer_holds(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    held = sweep_unit_claim(sweep=sweep_with_units, task_id="task-1")
    silence("task-1")
    leases_reap()
    taken_over = sweep_unit_claim(sweep=sweep_with_units, task_id="task-2")
    assert taken_over.pk == held.pk

    assert not sweep_unit_finish(unit=held, job=job, seconds=1.0, perturbations=10)
    assert sweep_unit_finish(unit=taken_over, job=job, seconds=1.0, perturbations=10)

    sweep_with_units.refresh_from_db()
    assert sweep_with_units.perturbations == 10
    assert not lease_heartbeat(task_id="task-1")  # the lost task learns it lost its lease


def test_a_sweep_left_in_finalisation_by_a_lost_part_is_running_again(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    Sweep.objects.filter(pk=sweep_with_units.pk).update(status=Sweep.Status.FINALISING)
    silence("task-1")

    leases_reap()

    sweep_with_units.refresh_from_db()
    assert sweep_with_units.status == Sweep.Status.RUNNING
    assert JobLease.objects.filter(job=job, state=State.QUEUED).exists()


def test_work_lost_on_every_attempt_fails_the_job_and_the_sweep_with_the_reason(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    for attempt in (1, 2, 3):
        lease = JobLease.objects.get(job=job, attempt=attempt)
        if attempt > 1:
            assert lease_begin(job=job, task_id=lease.task_id, task_name=lease.task_name, kwargs=lease.kwargs)
        silence(lease.task_id)
        assert leases_reap() == 1

    job.refresh_from_db()
    sweep_with_units.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("WorkerLost: the worker running this job was lost on each of 3 attempt(s)")
    assert "no heartbeat" in job.error
    assert sweep_with_units.status == Sweep.Status.FAILED
    assert sweep_with_units.error == job.error
    assert not JobLease.objects.filter(job=job, state__in=[State.QUEUED, State.RUNNING]).exists()


def test_a_projection_batch_lost_three_times_fails_and_can_be_retried():
    study = StudyFactory()
    projections = [
        ProjectionFactory(case=CaseFactory(study=study), status=Projection.Status.PENDING) for _ in "ab"
    ]
    pks = [p.pk for p in projections]
    job = running_job(task_name=Tasks.PROJECT, kwargs={"projection_pks": pks})
    Projection.objects.filter(pk__in=pks).update(job=job)
    JobLease.objects.filter(task_id="task-1").update(attempt=3)
    silence("task-1")

    leases_reap()

    assert set(Projection.objects.filter(pk__in=pks).values_list("status", flat=True)) == {"failed"}
    assert job_of(job).status == Job.Status.FAILED
    projection_retry_failed(study=study)  # "Retry projections" takes them again
    assert Projection.objects.filter(case__study=study, status=Projection.Status.PENDING).count() == 2


def test_a_lab_run_lost_three_times_fails_with_the_reason():
    run = LabRunFactory(status=LabRun.Status.RUNNING)
    job = running_job(task_name=Tasks.LAB_RUN, kwargs={"run_pk": run.pk})
    JobLease.objects.filter(task_id="task-1").update(attempt=3)
    silence("task-1")

    leases_reap()

    run.refresh_from_db()
    assert run.status == LabRun.Status.FAILED
    assert run.error.startswith("WorkerLost")
    assert job_of(job).error == run.error


def job_of(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def test_cancel_ends_at_once_a_job_whose_worker_is_gone(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    sweep_unit_claim(sweep=sweep_with_units, task_id="task-1")
    Sweep.objects.filter(pk=sweep_with_units.pk).update(job=job)
    silence("task-1")

    sweep_cancel(sweep=Sweep.objects.get(pk=sweep_with_units.pk))

    sweep_with_units.refresh_from_db()
    assert job_of(job).status == Job.Status.CANCELLED
    assert sweep_with_units.status == Sweep.Status.CANCELLED
    assert not SweepUnit.objects.filter(sweep=sweep_with_units, status=SweepUnit.Status.RUNNING).exists()


def test_cancel_of_a_job_whose_worker_is_alive_waits_for_it_then_the_reaper_ends_it(sweep_with_units):
    job = running_job(kwargs={"sweep_pk": sweep_with_units.pk})
    Sweep.objects.filter(pk=sweep_with_units.pk).update(job=job)

    sweep_cancel(sweep=Sweep.objects.get(pk=sweep_with_units.pk))
    assert job_of(job).status == Job.Status.RUNNING  # the live task stops at its next check
    assert job_of(job).cancel_requested

    silence("task-1")  # ... but its worker died first
    leases_reap()

    sweep_with_units.refresh_from_db()
    assert job_of(job).status == Job.Status.CANCELLED
    assert "worker was lost" in job_of(job).message
    assert sweep_with_units.status == Sweep.Status.CANCELLED
    assert not JobLease.objects.filter(job=job, state=State.QUEUED).exists()  # nothing sent again


def test_cancel_ends_a_running_job_whose_work_waits_in_the_queue():
    job = running_job()
    lease_end(task_id="task-1")

    job_request_cancel(job=job)

    assert job.status == Job.Status.CANCELLED


def test_a_message_of_a_reclaimed_lease_is_dropped():
    job = job_create(kind="selftest")
    JobLease.objects.create(job=job, task_id="stale", task_name=job_selftest_task.name, state=State.LOST)

    job_selftest_task.apply(args=[job.pk], kwargs={"steps": 1, "step_seconds": 0}, task_id="stale")

    assert job_of(job).status == Job.Status.PENDING  # not run by the stale message


def test_a_task_takes_its_queued_lease_and_gives_it_back_when_it_ends():
    job = job_create(kind="selftest")
    JobLease.objects.create(job=job, task_id="fresh", task_name=job_selftest_task.name)

    job_selftest_task.apply(args=[job.pk], kwargs={"steps": 1, "step_seconds": 0}, task_id="fresh")

    lease = JobLease.objects.get(task_id="fresh")
    assert job_of(job).status == Job.Status.SUCCEEDED
    assert lease.state == State.DONE and lease.heartbeat_at is not None and lease.worker
