"""Writes to :class:`~reviewapp.models.Job`: the state machine that tasks drive and pages read.

pending -> running -> succeeded | failed | cancelled, and pending -> cancelled. Every transition is a
conditional ``UPDATE`` on the current status, so a message delivered twice (acks_late redelivers after a
lost worker) or a cancel racing a finish never moves a finished job. Every message sent for a job has a
:class:`~reviewapp.models.JobLease`, which :mod:`reviewapp.services.leases` uses to find and redo the work of
a lost worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Task
from celery.utils import uuid
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviewapp.celery import app
from reviewapp.models import AuditAction, Job, JobLease
from reviewapp.selectors.jobs import job_should_abort
from reviewapp.services import audit

Status = Job.Status


class JobCancelled(Exception):
    """Raised inside a task when its job was asked to stop; the task decorator marks the job cancelled."""


class JobContinues(Exception):
    """Raised inside a task whose job other tasks carry on (the parts of a sweep): the job stays running."""


@contextmanager
def job_step(
    *, failed: Callable[[str], None] | None = None, cancelled: Callable[[], None] | None = None
) -> Iterator[None]:
    """The bookkeeping around a step of a job's work, for the row the step works on (a sweep, a run, ...).

    ``InterruptedError`` (the engine's ``abort_fn`` stopped it) calls ``cancelled()`` and becomes
    :class:`JobCancelled`; any other exception calls ``failed("Type: message")`` and goes on to the task, which
    fails the job. :class:`JobCancelled` and :class:`JobContinues` pass through untouched.
    """
    try:
        yield
    except InterruptedError:
        if cancelled is not None:
            cancelled()
        raise JobCancelled from None
    except (JobCancelled, JobContinues):
        raise
    except Exception as error:
        if failed is not None:
            failed(f"{type(error).__name__}: {error}")
        raise


class Tasks:
    """The names of the tasks services send. Services name a task rather than import it, so that tasks
    import services and never the reverse; each task module declares the task of its name."""

    ESTIMATE_RANGES = "reviewapp.tasks.studies.study_estimate_ranges"
    PROJECT = "reviewapp.tasks.projections.projection_run"
    SWEEP_PREPARE = "reviewapp.tasks.sweeps.sweep_prepare"
    SWEEP_RUN_UNITS = "reviewapp.tasks.sweeps.sweep_run_units"
    DIMENSION_GALLERY = "reviewapp.tasks.sweeps.dimension_gallery"
    REVIEW_SET_RENDER = "reviewapp.tasks.review_sets.review_set_render"
    LAB_RUN = "reviewapp.tasks.lab.lab_run_counterfactual"

    @classmethod
    def names(cls) -> list[str]:
        return [value for key, value in vars(cls).items() if key.isupper()]


def registered_task(name: str) -> Task:
    """The task declared under ``name``; raises ``celery.exceptions.NotRegistered`` for an unknown name."""
    if name not in app.tasks:
        # A process that has not imported the task modules yet (a web process) imports them now.
        app.loader.import_default_modules()
    return app.tasks[name]


@transaction.atomic
def job_create(*, kind: str, created_by: AbstractBaseUser | None = None, message: str = "") -> Job:
    """A new pending job."""
    if not kind:
        raise ValueError("A job needs a kind.")
    job = Job.objects.create(kind=kind, created_by=created_by, message=message[:500])
    audit.record(created_by, AuditAction.LAUNCH_JOB, job, kind=kind, message=job.message)
    return job


@transaction.atomic
def job_enqueue(*, job: Job, task: Task | str, kwargs: dict[str, Any] | None = None, attempt: int = 1) -> str:
    """Send ``task(job.pk, **kwargs)`` to its queue once the surrounding transaction commits.

    ``task``: the task, or its name (one of :class:`Tasks`; how services send tasks). The task id is chosen
    here and stored on the job, so the row names its message before the message exists and a worker never
    sees a job that is not yet committed. The message gets a queued lease (``attempt``: which run of this
    work it is; the reaper sends the next one).
    """
    if isinstance(task, str):
        task = registered_task(task)
    task_id = uuid()
    kwargs = dict(kwargs or {})
    Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    JobLease.objects.create(job=job, task_id=task_id, task_name=task.name, kwargs=kwargs, attempt=attempt)
    job.celery_task_id = task_id
    transaction.on_commit(lambda: task.apply_async(args=[job.pk], kwargs=kwargs, task_id=task_id))
    return task_id


@transaction.atomic
def job_start(*, job: Job, task_id: str = "") -> bool:
    """Claim a pending job for running; False when it is finished or was cancelled before it started.

    A running job may be claimed again: that is the redelivery of a message whose worker died, or another
    task of a job shared by several (a sweep's parts). It keeps its first start, so the ETA stays right.
    """
    fields = {
        "status": Status.RUNNING,
        "started_at": Coalesce("started_at", Value(timezone.now())),
        "finished_at": None,
        "error": "",
    }
    if task_id:
        fields["celery_task_id"] = task_id
    claimed = Job.objects.filter(pk=job.pk, status__in=[Status.PENDING, Status.RUNNING]).update(**fields)
    job.refresh_from_db()
    return bool(claimed)


def job_progress(*, job: Job, done: int | float, total: int | float, message: str = "") -> None:
    """Record that ``done`` of ``total`` units are finished; progress is their ratio clipped to 0..1."""
    if total <= 0:
        fraction = 0.0
    else:
        fraction = min(max(float(done) / float(total), 0.0), 1.0)
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(progress=fraction, message=message[:500])
    job.progress = fraction
    job.message = message[:500]


def job_progress_fn(job: Job, *, min_interval_s: float = 0.5) -> Callable[[int, int, str], None]:
    """An engine ``progress_fn(done, total, message)`` that records into ``job``.

    Writes at most every ``min_interval_s`` seconds (always the last step), so an engine reporting every
    optimisation step does not turn into a database write per step.
    """
    last_write = [float("-inf")]

    def progress_fn(done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done >= total or now - last_write[0] >= min_interval_s:
            last_write[0] = now
            job_progress(job=job, done=done, total=total, message=message)

    return progress_fn


def job_abort_fn(job: Job, *, min_interval_s: float = 1.0) -> Callable[[], bool]:
    """An engine ``abort_fn()`` that is true once somebody asked to cancel ``job``.

    Reads the database at most every ``min_interval_s`` seconds; once true it stays true.
    """
    state = {"checked_at": float("-inf"), "abort": False}

    def abort_fn() -> bool:
        now = time.monotonic()
        if not state["abort"] and now - state["checked_at"] >= min_interval_s:
            state["checked_at"] = now
            state["abort"] = job_should_abort(job=job)
        return state["abort"]

    return abort_fn


@transaction.atomic
def job_succeed(*, job: Job, message: str = "") -> bool:
    """Mark a running job finished; False when it was no longer running."""
    updated = Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.SUCCEEDED, progress=1.0, message=message[:500], finished_at=timezone.now()
    )
    job.refresh_from_db()
    return bool(updated)


@transaction.atomic
def job_fail(*, job: Job, error: str) -> bool:
    """Mark a pending or running job failed with a message a person can act on."""
    updated = Job.objects.filter(pk=job.pk, status__in=[Status.PENDING, Status.RUNNING]).update(
        status=Status.FAILED, error=error, message="Failed.", finished_at=timezone.now()
    )
    job.refresh_from_db()
    return bool(updated)


def job_live_leases(*, job: Job):
    """The leases of ``job`` whose task runs on a worker that showed it was alive within the lease time."""
    fresh_since = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return JobLease.objects.filter(job=job, state=JobLease.State.RUNNING, heartbeat_at__gte=fresh_since)


@transaction.atomic
def job_request_cancel(*, job: Job) -> None:
    """Ask a job to stop: a pending one is cancelled now, a running one when its task next checks.

    A running job that no live task holds (its worker is gone, or its work waits in the queue for a
    worker) is cancelled now too; the message that comes later finds it cancelled and is dropped.
    """
    Job.objects.filter(pk=job.pk, status=Status.PENDING).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=timezone.now(), message="Cancelled."
    )
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(cancel_requested=True)
    if not job_live_leases(job=job).exists():
        Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.CANCELLED, finished_at=timezone.now(), message="Cancelled."
        )
        JobLease.objects.filter(job=job, state__in=[JobLease.State.QUEUED, JobLease.State.RUNNING]).update(
            state=JobLease.State.LOST, finished_at=timezone.now()
        )
    job.refresh_from_db()


@transaction.atomic
def job_mark_cancelled(*, job: Job, message: str = "Cancelled.") -> bool:
    """Record that a running job stopped because it was asked to."""
    updated = Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.CANCELLED, message=message[:500], finished_at=timezone.now()
    )
    job.refresh_from_db()
    return bool(updated)
