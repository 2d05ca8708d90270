"""Tasks that exercise the machinery itself, and the worker's answer to "which device do you compute on?"."""

from __future__ import annotations

import time

from celery.worker.control import control_command

from reviewapp.bridge.models import engine_device_description
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


@control_command()
def engine_device(state) -> dict[str, str]:
    """Worker control command (``/healthz`` broadcasts it): the device this worker runs the engine on."""
    try:
        return {"device": engine_device_description()}
    except Exception as error:  # a bad ENGINE_DEVICE: say so rather than not answering
        return {"device": f"error: {error}"}
