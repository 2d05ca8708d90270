"""Tasks of sweeps: prepare, run units (several at once on one job), render a dimension's gallery."""

from __future__ import annotations

from celery import current_task

from reviewapp.models import DimensionEffect, Job, Sweep
from reviewapp.services import dimensions, sweeps
from reviewapp.tasks.base import job_task


@job_task(queue="gpu")
def sweep_prepare_task(job: Job, *, sweep_pk: int) -> str:
    """Create a sweep's files and units and send its part tasks (the job stays running for them)."""
    sweep = Sweep.objects.select_related("study").filter(pk=sweep_pk).first()
    if sweep is None:
        return "The sweep was deleted."
    sweeps.sweep_prepare(sweep=sweep, job=job)
    return "Nothing to do."


@job_task(queue="gpu")
def sweep_run_units_task(job: Job, *, sweep_pk: int) -> str:
    """Take a sweep's units until none is left; the last part selects the dimensions and finishes the job."""
    sweep = Sweep.objects.select_related("study").filter(pk=sweep_pk).first()
    if sweep is None:
        return "The sweep was deleted."
    # The message's own id names the units this part holds, so that its redelivery takes them back.
    task_id = current_task.request.id or job.celery_task_id
    return sweeps.sweep_run_units(sweep=sweep, job=job, task_id=task_id)


@job_task(queue="gpu")
def dimension_gallery_task(job: Job, *, dimension_pk: int) -> str:
    """Render one dimension's gallery: its top images' counterfactuals and its mean difference map."""
    dimension = DimensionEffect.objects.select_related("sweep__study").filter(pk=dimension_pk).first()
    if dimension is None:
        return "The sweep was deleted."
    gallery = dimensions.dimension_render_gallery(dimension=dimension)
    return f"Rendered {len(gallery)} counterfactual(s) of dimension {dimension.dim}."
