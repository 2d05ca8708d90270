"""Celery tasks: thin wrappers that load rows by primary key and call services or the engine.

Celery's autodiscovery imports this package, so every task module is imported here.
"""

from reviewapp.tasks.lab import lab_run_counterfactual
from reviewapp.tasks.projections import projection_run
from reviewapp.tasks.review_sets import review_set_render
from reviewapp.tasks.studies import study_estimate_ranges
from reviewapp.tasks.sweeps import dimension_gallery, sweep_prepare, sweep_run_units
from reviewapp.tasks.system import job_selftest

__all__ = [
    "dimension_gallery",
    "job_selftest",
    "lab_run_counterfactual",
    "projection_run",
    "review_set_render",
    "study_estimate_ranges",
    "sweep_prepare",
    "sweep_run_units",
]
