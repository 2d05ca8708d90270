"""Selectors: reads that views, the API and tasks share."""
