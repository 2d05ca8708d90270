from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.models.runs import RunRecord


class Job(RunRecord):
    """One unit of background work as the UI sees it: its state, progress and timings.

    Celery tasks update the row through :mod:`reviewapp.services.jobs`; pages read it from the database, so
    progress works with any broker and survives a worker restart.
    """

    kind = models.CharField(max_length=64, help_text="What the job does, e.g. 'projection' or 'sweep'.")
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    message = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0) & models.Q(progress__lte=1.0),
                name="job_progress_between_0_and_1",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
