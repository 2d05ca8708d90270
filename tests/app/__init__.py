"""Tests of the Django app: views, services, tasks, workers; most need the database."""
