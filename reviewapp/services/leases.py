"""Crash safety of jobs: the leases that running tasks renew, and the reaper that redoes a lost worker's work.

Every message sent for a job has a :class:`~reviewapp.models.JobLease` (``job_enqueue`` creates it queued). The
task that receives the message takes the lease (:func:`lease_begin`) and renews its heartbeat every
``JOB_HEARTBEAT_SECONDS`` while it runs (:func:`lease_heartbeat`, from a thread of the worker), and gives it
back when it ends (:func:`lease_end`). A worker killed outright (``kill -9``, the machine lost, out of memory)
leaves its lease running with a heartbeat that stops; neither kombu's filesystem transport (which deletes a
message when it is read) nor Redis within its visibility timeout sends that message again.

:func:`leases_reap` finds leases whose heartbeat is older than ``JOB_LEASE_SECONDS`` and, for each:

* hands back what the task held (a sweep's units claimed by it become pending again; a sweep stuck in
  finalisation by a lost finaliser is running again);
* if the job was asked to stop, cancels it (and its sweep, projections or lab run) once no live task is left;
* else sends the same task again under a new lease, ``attempt + 1``, up to ``JOB_MAX_ATTEMPTS`` runs;
* else fails the job, and its sweep, projections or lab run, with the reason.

A message that arrives for a lease that was reclaimed or is done (Redis redelivering after its visibility
timeout, a duplicate) is dropped, so the same work never runs twice under two leases. Workers reap every
``JOB_REAP_INTERVAL_SECONDS`` and when they start; the progress endpoint reaps the job it reports on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from reviewapp.models import Job, JobLease, LabRun, Projection, ReviewSet, Sweep, SweepUnit
from reviewapp.services.jobs import Tasks, job_enqueue, job_fail, job_live_leases, job_mark_cancelled
from reviewapp.services.lab import lab_run_mark_finished
from reviewapp.services.projections import projection_mark_failed
from reviewapp.services.review_sets import review_set_mark_failed
from reviewapp.services.sweeps import sweep_mark_cancelled, sweep_mark_failed

State = JobLease.State


def this_worker() -> str:
    """``host:pid`` of this process, recorded on the leases it takes."""
    return f"{socket.gethostname()}:{os.getpid()}"


@transaction.atomic
def lease_begin(*, job: Job, task_id: str, task_name: str, kwargs: dict) -> bool:
    """Take the lease of message ``task_id``; False when it was reclaimed or is done (drop the message).

    A message sent before leases existed, or through another path, gets a lease here.
    """
    now = timezone.now()
    taken = JobLease.objects.filter(task_id=task_id, state__in=[State.QUEUED, State.RUNNING]).update(
        state=State.RUNNING, heartbeat_at=now, worker=this_worker()
    )
    if taken:
        return True
    if JobLease.objects.filter(task_id=task_id).exists():
        return False
    JobLease.objects.create(
        job=job,
        task_id=task_id,
        task_name=task_name,
        kwargs=kwargs,
        state=State.RUNNING,
        heartbeat_at=now,
        worker=this_worker(),
    )
    return True


def lease_heartbeat(*, task_id: str) -> bool:
    """Renew the lease; False when it is no longer this task's (it was reclaimed)."""
    return bool(
        JobLease.objects.filter(task_id=task_id, state=State.RUNNING).update(heartbeat_at=timezone.now())
    )


def lease_end(*, task_id: str) -> None:
    """The task ended (whatever its outcome): its lease is done."""
    JobLease.objects.filter(task_id=task_id, state=State.RUNNING).update(
        state=State.DONE, finished_at=timezone.now()
    )


@dataclass(frozen=True)
class Recovery:
    """What the reaper does for the rows a task works on, besides the job: hand back, fail, cancel."""

    release: Callable[[JobLease], None] = lambda lease: None
    failed: Callable[[JobLease, str], None] = lambda lease, error: None
    cancelled: Callable[[JobLease], None] = lambda lease: None


def _sweep(lease: JobLease) -> Sweep | None:
    return Sweep.objects.filter(pk=lease.kwargs.get("sweep_pk")).first()


def _sweep_release(lease: JobLease) -> None:
    SweepUnit.objects.filter(
        sweep_id=lease.kwargs.get("sweep_pk"), status=SweepUnit.Status.RUNNING, claimed_by=lease.task_id
    ).update(status=SweepUnit.Status.PENDING, claimed_by="")
    if not job_live_leases(job=lease.job).exclude(pk=lease.pk).exists():
        # Only the part that claimed the finalisation holds a sweep there; with no live part left it was lost.
        Sweep.objects.filter(pk=lease.kwargs.get("sweep_pk"), status=Sweep.Status.FINALISING).update(
            status=Sweep.Status.RUNNING
        )


def _sweep_failed(lease: JobLease, error: str) -> None:
    sweep = _sweep(lease)
    if sweep is not None:
        sweep_mark_failed(sweep=sweep, error=error)


def _sweep_cancelled(lease: JobLease) -> None:
    sweep = _sweep(lease)
    if sweep is not None:
        SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.RUNNING).update(
            status=SweepUnit.Status.PENDING, claimed_by=""
        )
        Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.FINALISING).update(status=Sweep.Status.RUNNING)
        sweep_mark_cancelled(sweep=sweep)


def _projections_failed(lease: JobLease, error: str) -> None:
    projection_mark_failed(
        projections=list(Projection.objects.filter(pk__in=lease.kwargs.get("projection_pks", []))),
        error=error,
    )


def _lab_run_finished(status: str) -> Callable[..., None]:
    def finish(lease: JobLease, error: str = "Cancelled.") -> None:
        run = LabRun.objects.filter(pk=lease.kwargs.get("run_pk")).first()
        if run is not None:
            lab_run_mark_finished(run=run, status=status, error=error)

    return finish


def _review_set_failed(lease: JobLease, error: str) -> None:
    review_set = ReviewSet.objects.filter(pk=lease.kwargs.get("review_set_pk")).first()
    if review_set is not None and review_set.status == ReviewSet.Status.RENDERING:
        review_set_mark_failed(review_set=review_set, error=error)


RECOVERY: dict[str, Recovery] = {
    Tasks.SWEEP_PREPARE: Recovery(release=_sweep_release, failed=_sweep_failed, cancelled=_sweep_cancelled),
    Tasks.SWEEP_RUN_UNITS: Recovery(release=_sweep_release, failed=_sweep_failed, cancelled=_sweep_cancelled),
    Tasks.PROJECT: Recovery(
        failed=_projections_failed, cancelled=lambda lease: _projections_failed(lease, "Cancelled.")
    ),
    Tasks.LAB_RUN: Recovery(
        failed=_lab_run_finished(LabRun.Status.FAILED), cancelled=_lab_run_finished(LabRun.Status.CANCELLED)
    ),
    Tasks.REVIEW_SET_RENDER: Recovery(
        failed=_review_set_failed, cancelled=lambda lease: _review_set_failed(lease, "Cancelled.")
    ),
}


def _drop_queued(job: Job) -> None:
    """The job ended: messages of it still in the queue will be dropped when they arrive."""
    JobLease.objects.filter(job=job, state=State.QUEUED).update(state=State.LOST, finished_at=timezone.now())


def expired_leases(*, job: Job | None = None):
    """Running leases whose heartbeat is older than ``JOB_LEASE_SECONDS``."""
    stale_before = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    leases = JobLease.objects.filter(state=State.RUNNING, heartbeat_at__lt=stale_before)
    return leases.filter(job=job) if job is not None else leases


def leases_reap(*, job: Job | None = None) -> int:
    """Reclaim every expired lease (of ``job``, or of all jobs); returns how many this call reclaimed."""
    reclaimed = 0
    for lease in expired_leases(job=job).select_related("job").order_by("pk"):
        if lease_reclaim(lease=lease):
            reclaimed += 1
    return reclaimed


@transaction.atomic
def lease_reclaim(*, lease: JobLease) -> bool:
    """Reclaim one expired lease: send its work again, or cancel or fail its job. False when another
    reaper got there first or the task renewed its lease meanwhile."""
    stale_before = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    taken = JobLease.objects.filter(pk=lease.pk, state=State.RUNNING, heartbeat_at__lt=stale_before).update(
        state=State.LOST, finished_at=timezone.now()
    )
    if not taken:
        return False
    recovery = RECOVERY.get(lease.task_name, Recovery())
    recovery.release(lease)
    job = Job.objects.get(pk=lease.job_id)
    if job.is_finished:
        return True
    lost = f"no heartbeat from {lease.worker or 'its worker'} for {settings.JOB_LEASE_SECONDS:g} s"
    if job.cancel_requested:
        if not job_live_leases(job=job).exists():
            recovery.cancelled(lease)
            job_mark_cancelled(job=job, message=f"Cancelled (the worker was lost: {lost}).")
            _drop_queued(job)
        return True
    if lease.attempt >= settings.JOB_MAX_ATTEMPTS:
        error = (
            f"WorkerLost: the worker running this job was lost on each of {lease.attempt} attempt(s); "
            f"last: {lost}."
        )
        recovery.failed(lease, error)
        job_fail(job=job, error=error)
        _drop_queued(job)
        return True
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        message=(
            f"A worker was lost ({lost}); its work was sent again "
            f"(attempt {lease.attempt + 1} of {settings.JOB_MAX_ATTEMPTS})."
        )[:500]
    )
    job_enqueue(job=job, task=lease.task_name, kwargs=lease.kwargs, attempt=lease.attempt + 1)
    return True
