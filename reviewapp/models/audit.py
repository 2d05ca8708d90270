"""Records that are only ever appended: every submitted version of an answer, and the audit trail of who
viewed which case, changed which answer, launched or cancelled which job and exported what.

Neither table has a foreign key to the users: deleting an account must not rewrite or drop its history, so
the user's id and name are copied in. Rows refuse to be changed or deleted from the app (``save`` of an
existing row and ``delete`` raise); on PostgreSQL a trigger refuses UPDATE and DELETE of audit events as
well. Answer versions go when their answer goes (deleting a review set deletes its answers).
"""

from __future__ import annotations

from django.db import models


class AppendOnly(models.Model):
    """A row that is written once."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class AnswerVersion(AppendOnly):
    """One submitted version of a reader's answer on an item: written when the reader submits, and again for
    every later change the submitted answer takes, so no submitted answer is ever overwritten unseen."""

    annotation = models.ForeignKey("reviewapp.Annotation", on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField(help_text="The answer's version number after this save.")
    answers = models.JSONField(help_text="Every answer field as it was stored.")
    submitted = models.BooleanField(
        default=True, help_text="Yes for an explicit submit; no for an edit of an already submitted answer."
    )
    reader_id = models.BigIntegerField()
    reader_name = models.CharField(max_length=150)
    time_spent_seconds = models.PositiveIntegerField(default=0)
    saved_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["annotation", "version"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "version"], name="answerversion_unique_version")
        ]

    def __str__(self) -> str:
        return f"Version {self.version} of answer {self.annotation_id} by {self.reader_name}"


class AuditAction(models.TextChoices):
    VIEW_ITEM = "view_item", "Viewed an item (reading screen)"
    VIEW_IMAGE = "view_image", "Viewed an item image"
    SAVE_ANSWER = "save_answer", "Saved an answer"
    SUBMIT_ANSWER = "submit_answer", "Submitted an answer"
    SHOW_EXPLANATION = "show_explanation", "Was shown an item's explanation (after the before-rating)"
    NAME_FACTOR = "name_factor", "Named a factor"
    FINALISE_SET = "finalise_set", "Finalised a review set"
    LAUNCH_JOB = "launch_job", "Launched a job"
    CANCEL_JOB = "cancel_job", "Cancelled a job"
    EXPORT = "export", "Exported"


class AuditEvent(AppendOnly):
    """Who did what to which object, when. ``target`` names the object as "<model>:<id>" (e.g. "case:12")."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True, help_text="Empty: the system.")
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    target = models.CharField(max_length=200, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or 'system'} {self.action} {self.target}"
