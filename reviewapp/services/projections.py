"""Projecting cases into StyleSpace, in batches of the study's batch size, one job per batch."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from reviewapp.bridge import projection as projection_bridge
from reviewapp.models import Case, Job, Projection, Study
from reviewapp.selectors.projections import stalled_case_ids
from reviewapp.services.jobs import (
    Tasks,
    job_abort_fn,
    job_create,
    job_enqueue,
    job_progress_fn,
    job_step,
)


@transaction.atomic
def projection_queue(*, cases: Sequence[Case], created_by: AbstractBaseUser | None = None) -> list[Job]:
    """A pending projection per case; batches are queued now, or once the study's style ranges exist."""
    projections = [Projection.objects.create(case=case) for case in cases]
    if not projections:
        return []
    study = cases[0].study
    if not study.has_ranges:
        return []
    return _queue_batches(study=study, projections=projections, created_by=created_by)


@transaction.atomic
def projection_queue_waiting(*, study: Study) -> list[Job]:
    """Queue the study's pending projections that have no job yet (they waited for the style ranges)."""
    waiting = list(
        Projection.objects.select_for_update()
        .filter(case__study=study, status=Projection.Status.PENDING, job__isnull=True)
        .order_by("pk")
    )
    return _queue_batches(study=study, projections=waiting, created_by=study.created_by)


def _queue_batches(*, study: Study, projections: list[Projection], created_by) -> list[Job]:
    jobs = []
    size = study.projection_batch_size
    for start in range(0, len(projections), size):
        batch = projections[start : start + size]
        job = job_create(
            kind="projection",
            created_by=created_by,
            message=f"{study.name}: {len(batch)} case(s), {study.projection_steps} steps",
        )
        Projection.objects.filter(pk__in=[p.pk for p in batch]).update(job=job)
        job_enqueue(job=job, task=Tasks.PROJECT, kwargs={"projection_pks": [p.pk for p in batch]})
        jobs.append(job)
    return jobs


def projection_run(*, job: Job, projection_pks: Sequence[int]) -> str:
    """Project the still-pending projections of a batch and record their results.

    Already finished projections (a redelivered message) are skipped, so running it twice does no harm.
    """
    projections = list(
        Projection.objects.select_related("case__study")
        .filter(pk__in=projection_pks, status=Projection.Status.PENDING)
        .order_by("pk")
    )
    if not projections:
        return "Nothing left to project."
    study = projections[0].case.study
    started = timezone.now()
    Projection.objects.filter(pk__in=[p.pk for p in projections]).update(started_at=started)
    for projection in projections:
        projection.started_at = started
    with job_step(
        failed=lambda error: projection_mark_failed(projections=projections, error=error),
        cancelled=lambda: projection_mark_failed(projections=projections, error="Cancelled."),
    ):
        rows = projection_bridge.project_to_files(
            study, projections, progress_fn=job_progress_fn(job), abort_fn=job_abort_fn(job)
        )
    projection_record(projections=projections, rows=rows)
    psnr = [row["psnr"] for row in rows if row["psnr"] is not None]
    mean_psnr = f", mean PSNR {sum(psnr) / len(psnr):.1f} dB" if psnr else ""
    return f"Projected {len(rows)} case(s){mean_psnr}."


@transaction.atomic
def projection_record(*, projections: Sequence[Projection], rows: Sequence[dict]) -> None:
    """Point the rows at their (already written) files and fidelity figures.

    Only rows still pending are recorded: a run that lost its worker's lease while another run of the same
    batch took over writes nothing twice.
    """
    now = timezone.now()
    for projection, fields in zip(projections, rows, strict=True):
        recorded = Projection.objects.filter(pk=projection.pk, status=Projection.Status.PENDING).update(
            **fields, status=Projection.Status.SUCCEEDED, finished_at=now, error=""
        )
        if recorded:
            projection.refresh_from_db()


@transaction.atomic
def projection_mark_failed(*, projections: Sequence[Projection], error: str) -> None:
    Projection.objects.filter(pk__in=[p.pk for p in projections], status=Projection.Status.PENDING).update(
        status=Projection.Status.FAILED, error=error, finished_at=timezone.now()
    )


@transaction.atomic
def projection_retry_failed(*, study: Study, created_by: AbstractBaseUser | None = None) -> list[Job]:
    """Queue new projections for the cases whose newest projection failed or was cancelled before it ran."""
    cases = Case.objects.filter(study=study)
    stalled = stalled_case_ids(cases=cases)
    return projection_queue(cases=list(cases.filter(pk__in=stalled).order_by("pk")), created_by=created_by)
