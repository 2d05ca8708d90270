"""Celery tasks: thin wrappers that load rows by primary key and call services.

Celery's autodiscovery imports this package, so every task module is imported here. Services send these
tasks by name (``reviewapp.services.jobs.Tasks``) and never import this package.
"""

from reviewapp.tasks.lab import lab_run_counterfactual_task
from reviewapp.tasks.projections import projection_run_task
from reviewapp.tasks.review_sets import review_set_render_task
from reviewapp.tasks.studies import study_estimate_ranges_task
from reviewapp.tasks.sweeps import dimension_gallery_task, sweep_prepare_task, sweep_run_units_task
from reviewapp.tasks.system import job_selftest_task

__all__ = [
    "dimension_gallery_task",
    "job_selftest_task",
    "lab_run_counterfactual_task",
    "projection_run_task",
    "review_set_render_task",
    "study_estimate_ranges_task",
    "sweep_prepare_task",
    "sweep_run_units_task",
]
