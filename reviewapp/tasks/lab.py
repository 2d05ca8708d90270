"""Tasks of the Counterfactual lab."""

from __future__ import annotations

from reviewapp.models import Job, LabRun
from reviewapp.services import lab
from reviewapp.tasks.base import job_task


@job_task(queue="interactive")
def lab_run_counterfactual_task(job: Job, *, run_pk: int) -> str:
    """Explain one case with one counterfactual (or saliency) method and store the result's files.

    On the ``interactive`` queue: a person waits for it, so it never queues behind a sweep's units.
    """
    run = LabRun.objects.select_related("study", "case").filter(pk=run_pk).first()
    if run is None:
        return "The lab run was deleted."
    return lab.lab_run_execute(run=run, job=job)
