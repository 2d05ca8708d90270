"""Celery tasks: thin wrappers that load rows by primary key and call services or the engine.

Celery's autodiscovery imports this package, so every task module is imported here.
"""

from reviewapp.tasks.system import job_selftest

__all__ = ["job_selftest"]
