"""Models of the review app, one module per area; import them from here."""

from reviewapp.models.jobs import Job

__all__ = ["Job"]
