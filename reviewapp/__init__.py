"""The Django project and app of the counterfactual review product."""

from reviewapp.celery import app as celery_app

__all__ = ["celery_app"]
