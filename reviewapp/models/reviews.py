"""Review sets and the readers' answers (papers/003 3.2, Appendix A).

A review set holds :class:`ReviewItem` rows (one sweep counterfactual or Counterfactual-lab run each); every
reader assigned to it gets a :class:`ReviewAssignment` with a seed that fixes their own item order, answers
each item once (:class:`Annotation`) and may name every dimension of the set (:class:`FactorAnnotation`).
"""

from __future__ import annotations

import random

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from reviewapp.bridge.params import CURATION_PARAMETERS, CurationFilters, field_options


def new_order_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


class ReviewSet(models.Model):
    """Curated review items from the selected dimensions of one sweep, and how readers see them.

    The curation parameters (images per dimension and the confidence and fidelity filters of papers/003 3.1)
    take their defaults and bounds from the engine's ``CurationFilters``; an empty filter is not applied.
    """

    class Status(models.TextChoices):
        RENDERING = "rendering", "Rendering"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    #: The fields that are the engine's ``CurationFilters``, by the engine's names.
    CURATION_FIELDS = CURATION_PARAMETERS

    study = models.ForeignKey("reviewapp.Study", on_delete=models.CASCADE, related_name="review_sets")
    sweep = models.ForeignKey("reviewapp.Sweep", on_delete=models.PROTECT, related_name="review_sets")
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RENDERING, db_index=True)
    job = models.ForeignKey(
        "reviewapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    images_per_dimension = models.PositiveIntegerField(
        **field_options(
            CurationFilters, "images_per_dimension", help_text="Items per selected dimension (paper: 5)."
        )
    )
    min_confidence = models.FloatField(**field_options(CurationFilters, "min_confidence"))
    min_psnr = models.FloatField(
        **field_options(CurationFilters, "min_psnr", help_text="dB; empty for no filter.")
    )
    min_ssim = models.FloatField(**field_options(CurationFilters, "min_ssim"))
    max_perceptual = models.FloatField(**field_options(CurationFilters, "max_perceptual"))
    max_prob_diff = models.FloatField(
        **field_options(
            CurationFilters, "max_prob_diff", help_text="Largest |C(x) - C(G(S))|; empty for no filter."
        )
    )
    curation = models.JSONField(
        default=dict, blank=True, help_text="Curation filters used and how many images each one dropped."
    )
    blinded = models.BooleanField(
        default=True, help_text="Readers see neither the dimension, the case name nor the curation order."
    )
    randomise_order = models.BooleanField(default=True, help_text="Each reader gets their own stable order.")
    show_probabilities = models.BooleanField(default=True, help_text="Show the classifier probability.")
    confidence_change = models.BooleanField(
        default=False,
        help_text="Readers rate their confidence in the classifier's call before seeing the explanation, "
        "then again with it (Cohen et al. 2021).",
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="reviewset_name_unique")]

    def __str__(self) -> str:
        return self.name


class ReviewItem(models.Model):
    """One result in a review set; ``position`` is its 1-based image index in the set.

    An item shows either a StyleSpace ``counterfactual`` of a sweep (one clamped dimension, curated into the
    set) or a ``lab_run`` of the Counterfactual lab (added to the set by an admin); exactly one is set. A lab
    run of a saliency method makes an item of the saliency ``arm``, answered with its own questions. The
    helpers below give both kinds one face, so the reading screen, the API and the exports treat them alike.
    """

    class Source(models.TextChoices):
        SWEEP = "sweep", "StyleSpace sweep"
        LAB = "lab", "Counterfactual lab"

    class Arm(models.TextChoices):
        """The arm of the reader study: what kind of explanation the item shows, and so its questions."""

        COUNTERFACTUAL = "counterfactual", "Counterfactual"
        SALIENCY = "saliency", "Saliency map"

    review_set = models.ForeignKey(ReviewSet, on_delete=models.CASCADE, related_name="items")
    counterfactual = models.ForeignKey(
        "reviewapp.Counterfactual", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lab_run = models.ForeignKey(
        "reviewapp.LabRun", null=True, blank=True, on_delete=models.PROTECT, related_name="review_items"
    )
    position = models.PositiveIntegerField()
    rank_in_dimension = models.PositiveIntegerField(
        null=True, blank=True, help_text="1 = the largest change of its dimension; empty for lab items."
    )

    class Meta:
        ordering = ["review_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["review_set", "position"], name="reviewitem_position_unique"),
            models.UniqueConstraint(fields=["review_set", "counterfactual"], name="reviewitem_unique"),
            models.UniqueConstraint(fields=["review_set", "lab_run"], name="reviewitem_lab_run_unique"),
            models.CheckConstraint(
                condition=models.Q(counterfactual__isnull=False, lab_run__isnull=True)
                | models.Q(counterfactual__isnull=True, lab_run__isnull=False),
                name="reviewitem_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"Item {self.position} of {self.review_set}"

    @property
    def source(self) -> str:
        return self.Source.LAB if self.lab_run_id else self.Source.SWEEP

    @property
    def arm(self) -> str:
        """``saliency`` for a Grad-CAM or integrated-gradients lab run, else ``counterfactual``."""
        if self.lab_run_id and self.lab_run.is_saliency:
            return self.Arm.SALIENCY
        return self.Arm.COUNTERFACTUAL

    @property
    def source_label(self) -> str:
        """What made the item, for admins: "Dimension 1980 (high)" or "Lab: Deep image prior"."""
        if self.lab_run_id:
            return f"Lab: {self.lab_run.get_method_display()}"
        return f"Dimension {self.counterfactual.dimension.dim} ({self.counterfactual.direction})"

    @property
    def case(self):
        if self.lab_run_id:
            return self.lab_run.case
        return self.counterfactual.projection.case

    @property
    def dimension(self):
        """The style dimension of a sweep item; None for a lab item."""
        return None if self.lab_run_id else self.counterfactual.dimension

    @property
    def prob_original(self) -> float | None:
        if self.lab_run_id:
            return self.lab_run.prob_original
        return self.counterfactual.projection.prob_original

    @property
    def prob_reconstruction(self) -> float | None:
        """C of the unmodified image the change is made on: the reconstruction, or the lab method's start
        point (the original when the method has none)."""
        if self.lab_run_id:
            run = self.lab_run
            return run.prob_start if run.start_image else run.prob_original
        return self.counterfactual.prob_reconstruction

    @property
    def prob_perturbed(self) -> float | None:
        if self.lab_run_id:
            return self.lab_run.prob_counterfactual
        return self.counterfactual.prob_perturbed

    def images(self) -> dict:
        """Kind -> stored file: original, reconstruction, perturbed, difference, flicker, stack; a saliency
        item has the original and its ``heatmap`` (the map blended over the original) and none of the rest."""
        if self.lab_run_id:
            run = self.lab_run
            if run.is_saliency:
                return {"original": run.case.image, "heatmap": run.heatmap_image}
            return {
                "original": run.case.image,
                "reconstruction": run.start_image if run.start_image else run.case.image,
                "perturbed": run.counterfactual_image,
                "difference": run.difference_image,
                "flicker": run.flicker_gif,
                "stack": run.stack_image,
            }
        counterfactual = self.counterfactual
        return {
            "original": counterfactual.projection.case.image,
            "reconstruction": counterfactual.projection.reconstruction,
            "perturbed": counterfactual.perturbed_image,
            "difference": counterfactual.difference_image,
            "flicker": counterfactual.flicker_gif,
            "stack": counterfactual.stack_image,
        }


class ReviewAssignment(models.Model):
    """A reader assigned to a review set; ``order_seed`` fixes the reader's item order across sessions."""

    review_set = models.ForeignKey(ReviewSet, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    order_seed = models.PositiveIntegerField(default=new_order_seed)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)
    finalised_at = models.DateTimeField(null=True, blank=True, help_text="When the reader submitted the set.")

    class Meta:
        ordering = ["review_set", "reader"]
        constraints = [
            models.UniqueConstraint(fields=["review_set", "reader"], name="reviewassignment_unique")
        ]

    def __str__(self) -> str:
        return f"{self.reader} on {self.review_set}"

    def ordered(self, item_ids: list[int]) -> list[int]:
        """``item_ids`` in this reader's order: shuffled by the seed if the set randomises, else sorted."""
        ordered = sorted(item_ids)
        if self.review_set.randomise_order:
            random.Random(self.order_seed).shuffle(ordered)
        return ordered


class PneumoniaRelevance(models.TextChoices):
    """Graded answers to "Is the change relevant to pneumonia?" (papers/003 Appendix A, Table 1)."""

    YES = "yes", "Yes"
    POSSIBLE = "possible", "Possible"
    EARLY_CHANGE = "early_change", "Early change"
    SUBTLE = "subtle", "Subtle"
    NOT_COMPELLING = "not_compelling", "Not compelling"
    NO = "no", "No"


class ItemFlag(models.TextChoices):
    """A reader's reason to pass on an item without the protocol's answers."""

    UNREADABLE = "unreadable", "Image unreadable"
    UNSURE = "unsure", "Not sure"


class ChestRegion(models.TextChoices):
    """Where on the radiograph the change is (radiographic zones, the reader's left/right is the patient's)."""

    RIGHT_UPPER = "right_upper", "Right upper zone"
    RIGHT_MIDDLE = "right_middle", "Right mid zone"
    RIGHT_LOWER = "right_lower", "Right lower zone"
    LEFT_UPPER = "left_upper", "Left upper zone"
    LEFT_MIDDLE = "left_middle", "Left mid zone"
    LEFT_LOWER = "left_lower", "Left lower zone"
    HEART_MEDIASTINUM = "heart_mediastinum", "Heart / mediastinum"
    BOTH_LUNGS = "both_lungs", "Both lungs / diffuse"
    OUTSIDE_LUNGS = "outside_lungs", "Outside the lungs"


class Finding(models.TextChoices):
    """What the change looks like, from a short vocabulary."""

    OPACITY = "opacity", "Opacity"
    CONSOLIDATION = "consolidation", "Consolidation"
    BORDER_BLURRING = "border_blurring", "Border blurring"
    EFFUSION = "effusion", "Effusion"
    DEVICE = "device", "Device"
    IMAGE_QUALITY = "image_quality", "Image quality / exposure"
    OTHER = "other", "Other"


class Annotation(models.Model):
    """One reader's answers on one review item; a draft until the reader saves it as final."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="annotations")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    q1_meaningful = models.BooleanField(
        null=True, blank=True, help_text="Is the change semantically meaningful?"
    )
    clinical_description = models.TextField(blank=True, help_text="If meaningful: the change, clinically.")
    q2_pneumonia = models.CharField(
        max_length=16, choices=PneumoniaRelevance.choices, blank=True,
        help_text="Is the change relevant to the pathology under consideration?",
    )  # fmt: skip
    comment = models.TextField(blank=True)
    confidence = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)], help_text="1 to 5."
    )
    flag = models.CharField(
        max_length=16, choices=ItemFlag.choices, blank=True,
        help_text="Set when the reader passes on the item: the protocol's answers are then not required.",
    )  # fmt: skip
    region = models.CharField(
        max_length=24, choices=ChestRegion.choices, blank=True, help_text="Where the change is (optional)."
    )
    finding = models.CharField(
        max_length=24, choices=Finding.choices, blank=True, help_text="What the change looks like (optional)."
    )
    saliency_relevant = models.BooleanField(
        null=True,
        blank=True,
        help_text="Saliency items: does the highlighted region show findings relevant to the label?",
    )
    confidence_before = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Confidence (1 to 5) in the classifier's call before seeing the explanation.",
    )  # fmt: skip
    confidence_after = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Confidence (1 to 5) in the classifier's call with the explanation.",
    )  # fmt: skip
    explanation_shown_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Confidence-change sets: when the reader was shown the explanation; the before-rating is "
        "frozen from then on.",
    )
    is_draft = models.BooleanField(default=True)
    time_spent_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the reader last submitted the answer (empty for a draft)."
    )
    version = models.PositiveIntegerField(
        default=0,
        help_text="How many times the answer was saved; a save based on an older version is refused.",
    )

    class Meta:
        ordering = ["item", "reader"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reader"], name="annotation_one_per_reader_item"),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | (models.Q(confidence__gte=1) & models.Q(confidence__lte=5)),
                name="annotation_confidence_1_to_5",
            ),
            models.CheckConstraint(
                condition=models.Q(confidence_before__isnull=True)
                | (models.Q(confidence_before__gte=1) & models.Q(confidence_before__lte=5)),
                name="annotation_confidence_before_1_to_5",
            ),
            models.CheckConstraint(
                condition=models.Q(confidence_after__isnull=True)
                | (models.Q(confidence_after__gte=1) & models.Q(confidence_after__lte=5)),
                name="annotation_confidence_after_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reader} on {self.item}"


class FactorRelevance(models.TextChoices):
    YES = "yes", "Relevant"
    POSSIBLE = "possible", "Possibly relevant"
    NO = "no", "Not relevant"


class FactorAnnotation(models.Model):
    """One reader's verdict on one style dimension of a review set, over all of its items."""

    review_set = models.ForeignKey(ReviewSet, on_delete=models.CASCADE, related_name="factor_annotations")
    dimension = models.ForeignKey("reviewapp.DimensionEffect", on_delete=models.CASCADE, related_name="+")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="factor_annotations"
    )
    factor_name = models.CharField(max_length=200, blank=True, help_text="e.g. 'right heart border blurring'")
    clinical_relevance = models.CharField(max_length=16, choices=FactorRelevance.choices, blank=True)
    pneumonia_relevance = models.CharField(max_length=16, choices=FactorRelevance.choices, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["review_set", "dimension", "reader"]
        constraints = [
            models.UniqueConstraint(
                fields=["review_set", "dimension", "reader"], name="factorannotation_one_per_reader_dimension"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reader} on dimension {self.dimension.dim} in {self.review_set}"
