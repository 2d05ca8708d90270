"""Tasks that exercise the machinery itself."""

from __future__ import annotations

import time

from reviewapp.models import Job
from reviewapp.services.jobs import JobCancelled, job_abort_fn, job_progress_fn
from reviewapp.tasks.base import job_task


@job_task(queue="default")
def job_selftest_task(job: Job, *, steps: int = 3, step_seconds: float = 0.05, fail: bool = False) -> str:
    """Count through ``steps`` steps, reporting progress and honouring cancel; fail at the end if asked."""
    progress_fn = job_progress_fn(job, min_interval_s=0.0)
    abort_fn = job_abort_fn(job, min_interval_s=0.0)
    for step in range(steps):
        if abort_fn():
            raise JobCancelled
        time.sleep(step_seconds)
        progress_fn(step + 1, steps, f"Step {step + 1} of {steps}")
    if fail:
        raise RuntimeError("The self-test was asked to fail.")
    return f"Self-test finished {steps} steps."
