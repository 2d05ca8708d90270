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
a finished or missing job (a redelivery, a deleted row) is acknowledged and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger

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

logger = get_task_logger(__name__)

QUEUES = frozenset({"default", "gpu", "interactive"})


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
            if not job_start(job=job, task_id=task.request.id or ""):
                logger.info("Job %s is %s; message ignored.", job_pk, job.status)
                return
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
            job_succeed(job=job, message=message or job.message)

        # Not functools.wraps: Celery checks call arguments against the signature it finds through
        # __wrapped__, which must stay (job_pk, **kwargs) rather than fn's.
        run.__name__, run.__qualname__, run.__module__ = fn.__name__, fn.__qualname__, fn.__module__
        run.__doc__ = fn.__doc__
        name = f"{fn.__module__}.{fn.__name__.removesuffix('_task')}"
        TASK_QUEUES[name] = queue
        return app.task(name=name, bind=True, **options)(run)

    return decorate
