"""The Counterfactual lab: one case explained by one method of ``explain_engine.counterfactuals``.

A :class:`LabRun` is created pending with its validated parameters and a job; the worker writes every file of
the result into a folder of its own and only then points the row at them, so a failed or cancelled run never
references a half-written file.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.models.runs import RunRecord


class LabRun(RunRecord):
    """A counterfactual (or saliency map) of one case toward a target class, by one method.

    ``parameters`` are the options the admin set (validated through the engine's ``make_config``); ``config``
    is every setting the engine used, recorded when the run finished. Probabilities are the classifier's
    probability of the study's target label on the original, on the method's start point (the generator's
    reconstruction, the deep image prior's pre-image; empty when the method has none) and on the result.
    """

    class Method(models.TextChoices):
        STYLESPACE = "stylespace", "StyleSpace dimension"
        GCI = "gci", "Generative counterfactual introspection"
        DIP = "dip", "Deep image prior"
        DISC = "disc", "DISC (deep inversion)"
        GRADCAM = "gradcam", "Grad-CAM"
        INTEGRATED_GRADIENTS = "integrated_gradients", "Integrated gradients"
        LATENTSHIFT = "latentshift", "Latent Shift (autoencoder)"

    #: Methods whose result is a heatmap over the unchanged image rather than a changed image.
    SALIENCY_METHODS = frozenset({Method.GRADCAM, Method.INTEGRATED_GRADIENTS})

    study = models.ForeignKey("reviewapp.Study", on_delete=models.CASCADE, related_name="lab_runs")
    case = models.ForeignKey("reviewapp.Case", on_delete=models.CASCADE, related_name="lab_runs")
    method = models.CharField(max_length=32, choices=Method.choices)
    target = models.PositiveSmallIntegerField(
        choices=[(0, "Absent"), (1, "Present")], help_text="The class to reach: 1 = the target label present."
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Options given to the method.")
    config = models.JSONField(default=dict, blank=True, help_text="Every setting the engine used.")
    job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    folder = models.CharField(max_length=500, blank=True, help_text="The run's files, under MEDIA_ROOT.")
    counterfactual_image = models.FileField(upload_to="lab/", max_length=500, blank=True)
    start_image = models.FileField(
        upload_to="lab/", max_length=500, blank=True, help_text="Reconstruction or pre-image, if any."
    )
    difference_image = models.FileField(
        upload_to="lab/", max_length=500, blank=True, help_text="Signed map: result minus start point."
    )
    heatmap_image = models.FileField(upload_to="lab/", max_length=500, blank=True, help_text="Saliency.")
    path_gif = models.FileField(upload_to="lab/", max_length=500, blank=True, help_text="Optimisation path.")
    flicker_gif = models.FileField(upload_to="lab/", max_length=500, blank=True)
    stack_image = models.FileField(
        upload_to="lab/", max_length=500, blank=True, help_text="Original | start point | counterfactual"
    )

    prob_original = models.FloatField(null=True, blank=True, help_text="C(x)")
    prob_start = models.FloatField(null=True, blank=True, help_text="C(start point)")
    prob_counterfactual = models.FloatField(null=True, blank=True, help_text="C(x')")
    flipped = models.BooleanField(
        null=True, blank=True, help_text="The decision on the result differs from that on the original."
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="explain_engine's counterfactual metrics.")
    details = models.JSONField(default=dict, blank=True, help_text="Method-specific findings.")
    seconds = models.FloatField(null=True, blank=True, help_text="Wall time of the run, models and files.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["study", "case"])]

    def __str__(self) -> str:
        return f"Lab run #{self.pk}: {self.get_method_display()} on {self.case.original_filename}"

    @property
    def is_saliency(self) -> bool:
        return self.method in self.SALIENCY_METHODS

    @property
    def target_name(self) -> str:
        """The target class in words: "pneumonia" or "no pneumonia"."""
        label = self.study.target_label.lower()
        return label if self.target == 1 else f"no {label}"

    @property
    def probability_change(self) -> float | None:
        """C(x') minus C(start point), or minus C(x) when the method has no start point."""
        reference = self.prob_start if self.prob_start is not None else self.prob_original
        if self.prob_counterfactual is None or reference is None:
            return None
        return self.prob_counterfactual - reference
