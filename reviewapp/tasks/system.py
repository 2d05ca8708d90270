"""Tasks that exercise the machinery itself, the worker's answer to "which device do you compute on?", and
the reaper thread every worker runs (it redoes the work of workers that died: :mod:`reviewapp.services.leases`).
"""

from __future__ import annotations

import threading
import time

from celery.signals import worker_ready, worker_shutdown
from celery.utils.log import get_task_logger
from celery.worker.control import control_command
from django.conf import settings
from django.db import connection

from reviewapp.bridge.models import engine_device_description
from reviewapp.models import Job
from reviewapp.services.jobs import JobCancelled, job_abort_fn, job_progress_fn
from reviewapp.services.leases import leases_reap
from reviewapp.tasks.base import job_task

logger = get_task_logger(__name__)

_reaper_stop = threading.Event()


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


def reap_lost_work(stop: threading.Event) -> None:
    """Reclaim expired leases now and every ``JOB_REAP_INTERVAL_SECONDS`` until ``stop`` is set."""
    while True:
        try:
            reclaimed = leases_reap()
            if reclaimed:
                logger.warning("Reclaimed %d task(s) of lost workers.", reclaimed)
        except Exception:  # the database hiccuped: the next round tries again
            logger.exception("Reaping lost work failed.")
        finally:
            connection.close()  # this thread's own connection
        if stop.wait(settings.JOB_REAP_INTERVAL_SECONDS):
            return


@worker_ready.connect
def start_reaper(**kwargs) -> None:
    """Every worker looks for the work of lost workers, from the moment it starts."""
    _reaper_stop.clear()
    threading.Thread(target=reap_lost_work, args=(_reaper_stop,), name="lease-reaper", daemon=True).start()


@worker_shutdown.connect
def stop_reaper(**kwargs) -> None:
    _reaper_stop.set()
