"""Studies and their cases: what is being explained (generator, classifier, target) and on which images."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from reviewapp.models.runs import RunRecord


class Study(models.Model):
    """A generator + discriminator, a classifier and the target label it is audited for.

    Checkpoint paths are absolute paths of files already on the server, or paths relative to MEDIA_ROOT for
    files uploaded through the app; the SHA-256 recorded when the study was validated tells whether a file
    changed since. ``generator_config`` and ``classifier_config`` keep what loading the models reported.
    """

    name = models.CharField(max_length=200, unique=True)
    notes = models.TextField(blank=True)

    generator_path = models.CharField(max_length=1000, help_text="Generator checkpoint (.pkl or .pt).")
    generator_sha256 = models.CharField(max_length=64, blank=True)
    generator_config = models.JSONField(
        default=dict, blank=True, help_text="Resolution, channels and StyleSpace size of the generator."
    )
    discriminator_path = models.CharField(
        max_length=1000, blank=True, help_text="Discriminator checkpoint; empty when in the generator's file."
    )
    discriminator_sha256 = models.CharField(max_length=64, blank=True)
    autoencoder_path = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Autoencoder checkpoint (.pt, network AE) for Latent Shift in the lab; empty: not offered.",
    )
    classifier_source = models.CharField(
        max_length=1000, help_text="Classifier checkpoint path, or a built-in name such as 'demo'."
    )
    classifier_kind = models.CharField(
        max_length=32, blank=True, help_text="Adapter (xrv, torchvision, torchscript, demo); empty to detect."
    )
    classifier_config = models.JSONField(
        default=dict, blank=True, help_text="Options passed to the classifier loader and what it reported."
    )
    classifier_sha256 = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=100, default="Pneumonia")

    resolution = models.PositiveIntegerField(null=True, blank=True, help_text="Image side in pixels.")
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    style_dims = models.PositiveIntegerField(null=True, blank=True, help_text="D, the size of StyleSpace.")

    ranges_path = models.CharField(max_length=1000, blank=True, help_text="Style ranges, under MEDIA_ROOT.")
    ranges_sha256 = models.CharField(max_length=64, blank=True)
    ranges_samples = models.PositiveIntegerField(
        default=100_000, validators=[MinValueValidator(1)], help_text="Generator samples for the ranges."
    )
    ranges_job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    projection_steps = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1)], help_text="Adam steps per projection (paper: 500)."
    )
    projection_batch_size = models.PositiveIntegerField(
        default=16, validators=[MinValueValidator(1)], help_text="Cases projected together in one task."
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    @property
    def has_ranges(self) -> bool:
        return bool(self.ranges_path)


class Case(models.Model):
    """One radiograph of a study, stored as a PNG at the study's resolution.

    ``source_metadata`` holds only de-identified facts about the source file (format, bit depth, size,
    photometric interpretation, windowing); DICOM files are de-identified before anything is stored.
    """

    class Split(models.TextChoices):
        HELDOUT = "heldout", "Held-out (sweep)"
        REVIEW = "review", "Review"

    class Label(models.IntegerChoices):
        NEGATIVE = 0, "Negative"
        POSITIVE = 1, "Positive"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="cases")
    image = models.FileField(upload_to="cases/", max_length=500, help_text="PNG at the study's resolution.")
    image_sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    source_file = models.FileField(
        upload_to="sources/", max_length=500, blank=True, help_text="The uploaded file; DICOM de-identified."
    )
    original_filename = models.CharField(max_length=255)
    source_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Hash of the uploaded file, to recognise it when uploaded again."
    )
    label = models.SmallIntegerField(
        choices=Label.choices, null=True, blank=True, help_text="Ground truth for the target label, if known."
    )
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.HELDOUT, db_index=True)
    source_metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "source_sha256"],
                condition=~models.Q(source_sha256=""),
                name="case_source_unique_per_study",
            )
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.study})"


class Projection(RunRecord):
    """A case projected into StyleSpace (papers/003 Eq. 2): its style vector, reconstruction and fidelity.

    The row is created pending when the projection is queued; the files are written before the row is
    updated to point at them. A case may be projected again (other settings); the newest succeeded one is
    the case's projection.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="projections")
    job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    config = models.JSONField(default=dict, blank=True, help_text="Projection settings (steps, loss weights)")

    styles_file = models.FileField(upload_to="projections/", max_length=500, blank=True, help_text=".npy [D]")
    styles_shape = models.JSONField(default=list, blank=True)
    styles_dtype = models.CharField(max_length=16, blank=True)
    styles_sha256 = models.CharField(max_length=64, blank=True)
    reconstruction = models.FileField(upload_to="projections/", max_length=500, blank=True)

    mse = models.FloatField(null=True, blank=True)
    psnr = models.FloatField(null=True, blank=True, help_text="dB")
    ssim = models.FloatField(null=True, blank=True)
    perceptual = models.FloatField(null=True, blank=True)
    perceptual_kind = models.CharField(max_length=32, blank=True)
    prob_original = models.FloatField(null=True, blank=True, help_text="C(x)")
    prob_reconstruction = models.FloatField(null=True, blank=True, help_text="C(G(S))")
    seconds = models.FloatField(null=True, blank=True, help_text="Share of the batch's optimisation time.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Projection #{self.pk} of {self.case.original_filename}"
