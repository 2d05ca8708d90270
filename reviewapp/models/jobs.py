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


class JobLease(models.Model):
    """One task's hold on a job: which message runs it, where, and when it last showed it was alive.

    A task renews ``heartbeat_at`` while it runs. A lease whose heartbeat is older than ``JOB_LEASE_SECONDS``
    belongs to a worker that is gone; :mod:`reviewapp.services.leases` reclaims it: its work is sent again
    under a new lease (``attempt`` + 1), or the job fails with the reason once ``JOB_MAX_ATTEMPTS`` are spent.
    A message that arrives for a lease already reclaimed or done is ignored, so a late redelivery by the
    broker never runs the same work twice.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        LOST = "lost", "Reclaimed (worker lost, or its job ended)"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="leases")
    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255)
    kwargs = models.JSONField(default=dict, blank=True, help_text="The task's keyword arguments.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=1, help_text="1 = the first run of this work.")
    worker = models.CharField(max_length=255, blank=True, help_text="Host and process id of the runner.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "created_at", "pk"]

    def __str__(self) -> str:
        return f"Lease {self.task_id} of job #{self.job_id} ({self.state})"
