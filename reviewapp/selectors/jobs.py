"""Reads of :class:`~reviewapp.models.Job`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from reviewapp.models import Job, Sweep
from reviewapp.selectors.sweeps import sweep_eta_seconds
from reviewapp.selectors.users import user_is_admin


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
    }
