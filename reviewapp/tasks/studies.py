"""Tasks of studies."""

from __future__ import annotations

from reviewapp.models import Job, Study
from reviewapp.services import studies
from reviewapp.tasks.base import job_task


@job_task(queue="gpu")
def study_estimate_ranges_task(job: Job, *, study_pk: int) -> str:
    """Estimate a study's style ranges (min, max, mean per style dimension over generator samples)."""
    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return "The study was deleted."
    return studies.study_estimate_ranges(study=study, job=job)
