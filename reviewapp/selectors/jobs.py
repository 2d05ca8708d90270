"""Reads of :class:`~reviewapp.models.Job`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from reviewapp.models import DimensionEffect, Job, LabRun, Projection, ReviewSet, Study, Sweep
from reviewapp.selectors.sweeps import sweep_eta_seconds
from reviewapp.selectors.users import user_is_admin

#: The queue of each kind of job (the queue its tasks are declared on; see reviewapp/tasks).
JOB_KIND_QUEUES = {
    "counterfactual": "interactive",
    "sweep": "gpu",
    "projection": "gpu",
    "style ranges": "gpu",
    "review set": "gpu",
    "gallery": "gpu",
}


def job_queue(*, job: Job) -> str:
    """The Celery queue the job's tasks wait on."""
    return JOB_KIND_QUEUES.get(job.kind, "default")


def job_queue_position(*, job: Job) -> dict[str, Any] | None:
    """Where a pending job waits: its queue, the jobs queued before it there and those running there.

    None once the job has started or finished.
    """
    if job.status != Job.Status.PENDING:
        return None
    queue = job_queue(job=job)
    kinds = [kind for kind, name in JOB_KIND_QUEUES.items() if name == queue]
    same_queue = (
        Job.objects.filter(kind__in=kinds) if kinds else Job.objects.exclude(kind__in=list(JOB_KIND_QUEUES))
    )
    ahead = same_queue.filter(status=Job.Status.PENDING).filter(
        Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk)
    )
    return {
        "queue": queue,
        "ahead": ahead.count(),
        "running": same_queue.filter(status=Job.Status.RUNNING).count(),
    }


def job_should_abort(*, job: Job) -> bool:
    """True when somebody asked to cancel the job (read fresh from the database)."""
    return Job.objects.filter(pk=job.pk, cancel_requested=True).exists()


def job_list_visible_to(*, user: AbstractBaseUser) -> QuerySet[Job]:
    """Admins see every job; anybody else only the jobs they started."""
    jobs = Job.objects.all()
    return jobs if user_is_admin(user) else jobs.filter(created_by=user)


def job_eta_seconds(*, job: Job) -> float | None:
    """Seconds left, extrapolated from the time spent so far; None when it cannot be estimated.

    A sweep's job is measured on the rate of its latest finished units rather than on its whole run, so the
    time spent loading models and planning, or a slower start, does not swing the estimate.
    """
    if job.status != Job.Status.RUNNING or job.started_at is None or not 0.0 < job.progress < 1.0:
        return None
    if job.kind == "sweep":
        sweep = Sweep.objects.filter(job=job).select_related("job").first()
        eta = sweep_eta_seconds(sweep=sweep) if sweep is not None else None
        if eta is not None:
            return eta
    elapsed = (timezone.now() - job.started_at).total_seconds()
    return round(elapsed * (1.0 - job.progress) / job.progress, 1)


def job_progress_payload(*, job: Job) -> dict[str, Any]:
    """What ``/jobs/<pk>/progress`` answers."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "finished": job.is_finished,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "eta_seconds": job_eta_seconds(job=job),
        "queue": job_queue_position(job=job),
    }


@dataclass(frozen=True)
class JobTarget:
    """What a job works on, for a link from the jobs page: a label and a page (URL name and pk)."""

    label: str
    url_name: str
    pk: int


def job_targets(*, jobs: Sequence[Job]) -> dict[int, JobTarget]:
    """The sweep, review set, lab run, gallery or study (ranges, projections) each job works on, by job pk."""
    ids = [job.pk for job in jobs]
    targets: dict[int, JobTarget] = {}
    for sweep in Sweep.objects.filter(job_id__in=ids).select_related("study"):
        targets[sweep.job_id] = JobTarget(f"Sweep {sweep.pk} · {sweep.study.name}", "sweep", sweep.pk)
    for review_set in ReviewSet.objects.filter(job_id__in=ids):
        targets[review_set.job_id] = JobTarget(
            f"Review set “{review_set.name}”", "curation-review-set", review_set.pk
        )
    for run in LabRun.objects.filter(job_id__in=ids).select_related("study"):
        targets[run.job_id] = JobTarget(f"Lab run {run.pk} · {run.get_method_display()}", "lab-run", run.pk)
    for dimension in DimensionEffect.objects.filter(gallery_job_id__in=ids):
        targets[dimension.gallery_job_id] = JobTarget(
            f"Dimension {dimension.dim} of sweep {dimension.sweep_id}", "sweep", dimension.sweep_id
        )
    for job_id, study_pk, name in (
        Projection.objects.filter(job_id__in=ids)
        .values_list("job_id", "case__study_id", "case__study__name")
        .distinct()
    ):
        targets.setdefault(job_id, JobTarget(f"Projections · {name}", "study", study_pk))
    for study in Study.objects.filter(ranges_job_id__in=ids):
        targets[study.ranges_job_id] = JobTarget(f"Style ranges · {study.name}", "study", study.pk)
    return targets


#: Filters of the jobs page: query value -> statuses.
JOB_HISTORY_FILTERS = {
    "": None,
    "active": [Job.Status.PENDING, Job.Status.RUNNING],
    "failed": [Job.Status.FAILED],
    "cancelled": [Job.Status.CANCELLED],
    "succeeded": [Job.Status.SUCCEEDED],
}


def job_history(*, user: AbstractBaseUser, status: str = "") -> QuerySet[Job]:
    """The jobs ``user`` may see, newest first, of the statuses of the ``status`` filter."""
    jobs = job_list_visible_to(user=user).select_related("created_by").order_by("-created_at", "-pk")
    statuses = JOB_HISTORY_FILTERS.get(status)
    return jobs.filter(status__in=statuses) if statuses else jobs


def job_duration(*, job: Job) -> float | None:
    """Seconds from start to finish (to now while running); None before it starts."""
    if job.started_at is None:
        return None
    end = job.finished_at or timezone.now()
    return max(0.0, (end - job.started_at).total_seconds())
