"""The one way to declare a task of the project: :func:`job_task`.

A job task is a function ``fn(job, **kwargs)`` named ``*_task``; the decorator turns it into a Celery task
``(job_pk, **kwargs)`` on the named queue that claims the job, runs ``fn`` and records the outcome. Its Celery
name is its module and its function name without ``_task`` (``reviewapp.tasks.sweeps.sweep_run``), the name
services send it by (:class:`~reviewapp.services.jobs.Tasks`), since services never import tasks:

    @job_task(queue="gpu")
    def sweep_run_task(job: Job, *, sweep_pk: int) -> str:
        return sweeps.sweep_run(sweep=..., job=job)  # a service does the work

    # in the service
    job = job_create(kind="sweep", created_by=request.user)
    job_enqueue(job=job, task="reviewapp.tasks.sweeps.sweep_run", kwargs={"sweep_pk": sweep.pk})

``fn`` raises :class:`~reviewapp.services.jobs.JobCancelled` to stop on a cancel request, and
:class:`~reviewapp.services.jobs.JobContinues` to leave its job running for other tasks to finish; any other
exception fails the job with its message and is re-raised so the worker logs the traceback. A message for
a finished or missing job (a redelivery, a deleted row), or for a lease that was reclaimed, is acknowledged and
ignored. While ``fn`` runs, a thread renews the message's lease every ``JOB_HEARTBEAT_SECONDS``
(:mod:`reviewapp.services.leases`), so that the work of a worker that dies is found and sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from django.conf import settings
from django.db import connection

from reviewapp.celery import TASK_QUEUES, app
from reviewapp.models import Job
from reviewapp.services.jobs import (
    JobCancelled,
    JobContinues,
    job_fail,
    job_mark_cancelled,
    job_start,
    job_succeed,
)
from reviewapp.services.leases import lease_begin, lease_end, lease_heartbeat

logger = get_task_logger(__name__)

QUEUES = frozenset({"default", "gpu", "interactive"})


class Heartbeat(threading.Thread):
    """Renews a lease every ``interval_s`` until stopped; ``lost`` once the lease was reclaimed."""

    def __init__(self, task_id: str, *, interval_s: float) -> None:
        super().__init__(name=f"heartbeat-{task_id}", daemon=True)
        self.task_id = task_id
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                try:
                    if not lease_heartbeat(task_id=self.task_id):
                        self.lost = True
                        logger.warning("The lease of task %s was reclaimed.", self.task_id)
                        return
                except Exception:  # the database hiccuped: the next beat tries again
                    logger.exception("Could not renew the lease of task %s.", self.task_id)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def _run_and_record(
    fn: Callable[..., str | None], job: Job, kwargs: dict, heartbeat: Heartbeat | None
) -> None:
    try:
        message = fn(job, **kwargs)
    except JobCancelled:
        job_mark_cancelled(job=job)
        return
    except JobContinues:
        return
    except Exception as exc:
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    if heartbeat is not None and heartbeat.lost:
        # Another run of this work took over; it records the outcome.
        logger.warning("Job %s finished after its lease was reclaimed; outcome left alone.", job.pk)
        return
    job_succeed(job=job, message=message or job.message)


def job_task(*, queue: str = "default", **options: Any) -> Callable[[Callable[..., str | None]], Task]:
    """Declare ``fn(job, **kwargs)`` as a task ``(job_pk, **kwargs)`` on ``queue`` ("default", "gpu" or
    "interactive")."""
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; expected one of {', '.join(sorted(QUEUES))}.")

    def decorate(fn: Callable[..., str | None]) -> Task:
        def run(task: Task, job_pk: int, **kwargs: Any) -> None:
            job = Job.objects.filter(pk=job_pk).first()
            if job is None:
                logger.warning("Job %s does not exist; message ignored.", job_pk)
                return
            task_id = task.request.id or ""
            if task_id and not lease_begin(job=job, task_id=task_id, task_name=task.name, kwargs=kwargs):
                logger.info("Task %s of job %s was reclaimed or is done; message ignored.", task_id, job_pk)
                return
            if not job_start(job=job, task_id=task_id):
                logger.info("Job %s is %s; message ignored.", job_pk, job.status)
                if task_id:
                    lease_end(task_id=task_id)
                return
            heartbeat = None
            if task_id:
                heartbeat = Heartbeat(task_id, interval_s=settings.JOB_HEARTBEAT_SECONDS)
                heartbeat.start()
            try:
                _run_and_record(fn, job, kwargs, heartbeat)
            finally:
                # Given back only once the outcome is recorded, so that a cancel never sees a job nobody holds.
                if task_id:
                    lease_end(task_id=task_id)

        # Not functools.wraps: Celery checks call arguments against the signature it finds through
        # __wrapped__, which must stay (job_pk, **kwargs) rather than fn's.
        run.__name__, run.__qualname__, run.__module__ = fn.__name__, fn.__qualname__, fn.__module__
        run.__doc__ = fn.__doc__
        name = f"{fn.__module__}.{fn.__name__.removesuffix('_task')}"
        TASK_QUEUES[name] = queue
        return app.task(name=name, bind=True, **options)(run)

    return decorate
