"""Tasks of projections."""

from __future__ import annotations

from reviewapp.models import Job
from reviewapp.services import projections
from reviewapp.tasks.base import job_task


@job_task(queue="gpu")
def projection_run_task(job: Job, *, projection_pks: list[int]) -> str:
    """Project one batch of cases into StyleSpace (papers/003 Eq. 2)."""
    return projections.projection_run(job=job, projection_pks=projection_pks)
