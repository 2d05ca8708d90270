"""Sweeps of StyleSpace (papers/003 Eq. 3-5), the effect of every dimension, and rendered counterfactuals."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.bridge.params import SelectionConfig, SweepConfig, field_options
from reviewapp.models.runs import RunRecord


class Sweep(RunRecord):
    """Clamping every style dimension of a set of projected held-out cases to its extremes.

    The deltas ``[N, D, 2]`` live as memory-mapped ``.npy`` files in ``deltas_dir`` (relative to MEDIA_ROOT);
    the work is split into :class:`SweepUnit` rows that several workers take in parallel. The sweep and
    selection parameters take their defaults and bounds from the engine's ``SweepConfig`` and
    ``SelectionConfig``; ``config`` is the ``SweepConfig`` stored at launch, which every part of the sweep runs
    with. The curation filters belong to each review set made from it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        FINALISING = "finalising", "Selecting dimensions"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Mode(models.TextChoices):
        EXACT = "exact", "Exact"
        SCREENING = "screening", "Screening (gradient estimate, exact top-k)"

    class Aggregate(models.TextChoices):
        MEAN_ABS = "mean_abs", "Mean |change|"
        FRACTION = "fraction", "Fraction of images with |change| >= delta"
        MEAN_RAISE = "mean_raise", "Mean raise of the score"

    class Rule(models.TextChoices):
        ESTIMATE = "estimate", "The effect over all images exceeds the threshold"
        INTERVAL = "interval", "The lower bound of its bootstrap interval exceeds the threshold"

    class Precision(models.TextChoices):
        FLOAT32 = "float32", "float32"
        BF16 = "bf16", "bf16 (GPU)"

    study = models.ForeignKey("reviewapp.Study", on_delete=models.CASCADE, related_name="sweeps")
    job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)

    mode = models.CharField(max_length=16, choices=Mode.choices, **field_options(SweepConfig, "mode"))
    screening_top_k = models.PositiveIntegerField(**field_options(SweepConfig, "screening_top_k"))
    aggregate = models.CharField(
        max_length=16, choices=Aggregate.choices, **field_options(SelectionConfig, "aggregate")
    )
    delta = models.FloatField(**field_options(SelectionConfig, "delta"))
    min_fraction = models.FloatField(**field_options(SelectionConfig, "min_fraction"))
    strongest_k = models.PositiveIntegerField(
        **field_options(
            SelectionConfig,
            "strongest_k",
            help_text="Select the K strongest dimensions instead of those above the threshold; "
            "empty: the threshold.",
        )
    )
    rule = models.CharField(max_length=16, choices=Rule.choices, **field_options(SelectionConfig, "rule"))
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="The engine's SweepConfig, stored at launch; every part runs with it.",
    )
    precision = models.CharField(
        max_length=16,
        choices=Precision.choices,
        blank=True,
        help_text="Precision the deltas were computed in (bf16 when any unit ran in bf16 on a GPU).",
    )
    tolerance = models.FloatField(
        default=0.0,
        help_text="Numeric error of the deltas in that precision; selection lists dimensions within it of the "
        "threshold as borderline.",
    )
    confidence = models.FloatField(**field_options(SelectionConfig, "confidence"))
    resamples = models.PositiveIntegerField(**field_options(SelectionConfig, "resamples"))

    num_images = models.PositiveIntegerField(default=0)
    dims = models.PositiveIntegerField(default=0)
    deltas_dir = models.CharField(max_length=500, blank=True)
    deltas_shape = models.JSONField(default=list, blank=True)
    deltas_dtype = models.CharField(max_length=16, blank=True)
    deltas_sha256 = models.CharField(max_length=64, blank=True)
    effect_plot = models.FileField(upload_to="sweeps/", max_length=500, blank=True)
    num_selected = models.PositiveIntegerField(null=True, blank=True)
    perturbations = models.BigIntegerField(default=0)
    refined_perturbations = models.BigIntegerField(
        default=0,
        help_text="Of the perturbations, those of a screening sweep's exact second pass (as recorded so far).",
    )
    compute_seconds = models.FloatField(default=0.0, help_text="Engine time summed over units.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Sweep #{self.pk} of {self.study}"

    @property
    def selection_rule(self) -> str:
        """How dimensions are selected, in words: "mean |change| > 0.25", "the 10 strongest by mean |change|",
        "lower bound of the 90% interval of mean |change| > 0.3"."""
        effect = {
            self.Aggregate.MEAN_ABS: "mean |change|",
            self.Aggregate.FRACTION: f"share of images with |change| ≥ {self.delta:g}",
            self.Aggregate.MEAN_RAISE: "mean raise of the score",
        }.get(self.aggregate, self.aggregate)
        if self.strongest_k:
            return f"the {self.strongest_k} strongest by {effect}"
        threshold = self.min_fraction if self.aggregate == self.Aggregate.FRACTION else self.delta
        if self.rule == self.Rule.INTERVAL:
            return f"lower bound of the {self.confidence:.0%} interval of {effect} > {threshold:g}"
        return f"{effect} > {threshold:g}"

    @property
    def borderline_rule(self) -> str:
        """When a dimension that is not selected is listed as borderline, in words."""
        words = f"its {self.confidence:.0%} bootstrap interval over the images reaches the threshold"
        if self.tolerance:
            words += (
                f", or it misses the threshold by less than the deltas' numeric tolerance {self.tolerance:g} "
                f"({self.get_precision_display()})"
            )
        return words


class SweepCase(models.Model):
    """Row ``index`` of a sweep's deltas: which projection (and so which case) it is."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="sweep_cases")
    projection = models.ForeignKey("reviewapp.Projection", on_delete=models.PROTECT, related_name="+")
    index = models.PositiveIntegerField()

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "index"], name="sweepcase_index_unique"),
            models.UniqueConstraint(fields=["sweep", "projection"], name="sweepcase_projection_unique"),
        ]


class SweepUnit(models.Model):
    """One image chunk x dimension chunk of a sweep; a worker claims it with a conditional update."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="units")
    index = models.PositiveIntegerField()
    image_start = models.PositiveIntegerField()
    image_stop = models.PositiveIntegerField()
    dim_start = models.PositiveIntegerField()
    dim_stop = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    claimed_by = models.CharField(max_length=255, blank=True, help_text="Celery task id of the claimant.")
    attempts = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    device = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="The engine device the unit ran on, as its worker describes it (e.g. 'cuda:0 (NVIDIA H200, "
        "139 GiB)' or 'cpu (2 threads)'); empty for units recorded before devices were.",
    )

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [models.UniqueConstraint(fields=["sweep", "index"], name="sweepunit_index_unique")]

    def __str__(self) -> str:
        return f"Unit {self.index} of sweep #{self.sweep_id}"


class DimensionEffect(models.Model):
    """The aggregated effect of clamping one style dimension over a sweep's images; one row per dimension.

    ``r_low`` / ``r_high`` are the changes of the classifier score when the dimension is clamped low / high.
    """

    class Direction(models.TextChoices):
        LOW = "low", "Clamped low"
        HIGH = "high", "Clamped high"

    class Kind(models.TextChoices):
        CONV = "conv", "conv"
        TORGB = "torgb", "toRGB"

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="dimension_effects")
    dim = models.PositiveIntegerField(help_text="Index in the flat style vector.")
    layer = models.CharField(max_length=64)
    channel = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    resolution = models.PositiveIntegerField()
    rank = models.PositiveIntegerField(help_text="1 = strongest effect.")
    effect = models.FloatField()
    direction = models.CharField(max_length=4, choices=Direction.choices)
    raises_score = models.BooleanField()
    selected = models.BooleanField(db_index=True)
    mean_low = models.FloatField()
    mean_high = models.FloatField()
    mean_abs_low = models.FloatField()
    mean_abs_high = models.FloatField()
    fraction_low = models.FloatField()
    fraction_high = models.FloatField()
    max_abs = models.FloatField()
    # Bootstrap over the sweep's images (null when the sweep was selected without resampling).
    effect_lower = models.FloatField(null=True, blank=True, help_text="Lower bound of the effect's interval.")
    effect_upper = models.FloatField(null=True, blank=True)
    low_lower = models.FloatField(null=True, blank=True, help_text="Interval of the aggregate clamped low.")
    low_upper = models.FloatField(null=True, blank=True)
    high_lower = models.FloatField(null=True, blank=True, help_text="Interval of the aggregate clamped high.")
    high_upper = models.FloatField(null=True, blank=True)
    frequency = models.FloatField(null=True, blank=True, help_text="Share of resamples selecting it.")
    frequency_low = models.FloatField(null=True, blank=True)
    frequency_high = models.FloatField(null=True, blank=True)
    borderline = models.BooleanField(default=False, help_text="Not selected, but its selection is uncertain.")
    borderline_reason = models.CharField(max_length=300, blank=True)

    mean_difference = models.FileField(
        upload_to="sweeps/", max_length=500, blank=True, help_text="Mean signed difference map (heatmap PNG)."
    )
    distribution_plot = models.FileField(upload_to="sweeps/", max_length=500, blank=True)
    gallery_job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["sweep", "rank"]
        constraints = [models.UniqueConstraint(fields=["sweep", "dim"], name="dimensioneffect_dim_unique")]
        indexes = [models.Index(fields=["sweep", "selected", "rank"])]

    def __str__(self) -> str:
        return f"Dimension {self.dim} ({self.layer}:{self.channel}) of sweep #{self.sweep_id}"


class Counterfactual(models.Model):
    """A projected case with one style dimension clamped: the perturbed image and how the classifier moved.

    The original is ``projection.case.image`` and the reconstruction ``projection.reconstruction``; the stack
    is the three side by side with the classifier's probability on each.
    """

    projection = models.ForeignKey("reviewapp.Projection", on_delete=models.CASCADE, related_name="+")
    dimension = models.ForeignKey(DimensionEffect, on_delete=models.CASCADE, related_name="counterfactuals")
    direction = models.CharField(max_length=4, choices=DimensionEffect.Direction.choices)
    clamp_value = models.FloatField(help_text="The value s_d was clamped to.")
    prob_reconstruction = models.FloatField(help_text="C(G(S))")
    prob_perturbed = models.FloatField(help_text="C(G(S with s_d clamped))")
    perturbed_image = models.FileField(upload_to="counterfactuals/", max_length=500)
    difference_image = models.FileField(upload_to="counterfactuals/", max_length=500, help_text="Signed map.")
    flicker_gif = models.FileField(upload_to="counterfactuals/", max_length=500)
    stack_image = models.FileField(
        upload_to="counterfactuals/",
        max_length=500,
        blank=True,
        help_text="Original | reconstruction | perturbed",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dimension", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["projection", "dimension", "direction"], name="counterfactual_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Dimension {self.dimension.dim} {self.direction} on projection #{self.projection_id}"

    @property
    def change(self) -> float:
        """How far clamping moved the score: C(perturbed) - C(reconstruction)."""
        return self.prob_perturbed - self.prob_reconstruction
