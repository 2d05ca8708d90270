"""Serializers of the API. Writes go through the services; serializers only check the shape of the input."""

from __future__ import annotations

from collections.abc import Mapping

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reviewapp.models import (
    Annotation,
    Case,
    ChestRegion,
    DimensionEffect,
    FactorAnnotation,
    FactorRelevance,
    Finding,
    ItemFlag,
    LabRun,
    PneumoniaRelevance,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
)
from reviewapp.selectors.reviews import BEFORE_STAGE_IMAGES
from reviewapp.services.annotations import ANSWER_FIELDS, MAX_FACTOR_NAME_LENGTH, MAX_TEXT_LENGTH, Answers


class StudySerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = [
            "id", "name", "notes", "target_label", "generator_path", "classifier_source", "classifier_kind",
            "resolution", "channels", "style_dims", "has_ranges", "projection_steps", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class CaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Case
        fields = ["id", "study", "original_filename", "width", "height", "label", "split", "created_at"]
        read_only_fields = fields


class SweepSerializer(serializers.ModelSerializer):
    job = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Sweep
        fields = [
            "id", "study", "status", "job", "mode", "screening_top_k", "aggregate", "delta", "min_fraction",
            "strongest_k", "config", "num_images", "dims", "num_selected", "perturbations", "compute_seconds", "error",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [
            "status", "job", "config", "num_images", "dims", "num_selected", "perturbations", "compute_seconds",
            "error", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class RefusesUnknownFields:
    """A write serializer that answers 400 for a field it does not take, instead of ignoring it (a misspelt
    or misplaced parameter, e.g. a curation filter sent with a sweep, must not pass for accepted)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(name) for name in set(data) - writable)
            if unknown:
                message = f"Not a field that can be set here; the fields are: {', '.join(sorted(writable))}."
                raise serializers.ValidationError({name: [message] for name in unknown})
        return super().to_internal_value(data)


class SweepLaunchSerializer(RefusesUnknownFields, SweepSerializer):
    """Launching a sweep: the study, optionally the cases (default: every projected held-out case) and the
    sweep's parameters (missing ones take the engine's defaults; the bounds are the model fields' validators,
    the same as the form's)."""

    cases = serializers.PrimaryKeyRelatedField(
        queryset=Case.objects.all(), many=True, required=False, write_only=True
    )

    class Meta(SweepSerializer.Meta):
        fields = [*SweepSerializer.Meta.fields, "cases"]

    def validate(self, attrs):
        study, cases = attrs["study"], attrs.get("cases")
        if cases is not None:
            if not cases:
                raise serializers.ValidationError({"cases": "Give at least one case, or leave it out."})
            if len({case.pk for case in cases}) != len(cases):
                raise serializers.ValidationError({"cases": "Give each case once."})
            if any(case.study_id != study.pk for case in cases):
                raise serializers.ValidationError({"cases": "Every case must belong to the study."})
        return attrs


class DimensionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DimensionEffect
        fields = [
            "id", "sweep", "dim", "layer", "channel", "kind", "resolution", "rank", "effect", "direction",
            "raises_score", "selected", "mean_low", "mean_high", "mean_abs_low", "mean_abs_high", "fraction_low",
            "fraction_high", "max_abs",
        ]  # fmt: skip
        read_only_fields = fields


class ReaderProgressSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    drafts = serializers.IntegerField()
    total = serializers.IntegerField()
    finalised_at = serializers.DateTimeField(allow_null=True)


class ReviewSetSerializer(serializers.ModelSerializer):
    items = serializers.IntegerField(source="items.count", read_only=True)
    my_progress = serializers.SerializerMethodField()

    class Meta:
        model = ReviewSet
        fields = [
            "id", "study", "sweep", "name", "instructions", "status", "blinded", "randomise_order",
            "show_probabilities", "confidence_change", *ReviewSet.CURATION_FIELDS, "items", "my_progress",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(ReaderProgressSerializer(allow_null=True))
    def get_my_progress(self, review_set: ReviewSet) -> dict | None:
        """The requesting reader's own progress; null when they are not assigned to the set."""
        progress = self.context.get("progress", {}).get(review_set.pk)
        if progress is None:
            return None
        return ReaderProgressSerializer(progress).data


class ItemImagesSerializer(serializers.Serializer):
    """The item's images: a counterfactual item has every one but ``heatmap``; a saliency item only
    ``original`` and ``heatmap`` (the map blended over the original)."""

    original = serializers.CharField()
    reconstruction = serializers.CharField(required=False)
    perturbed = serializers.CharField(required=False)
    difference = serializers.CharField(required=False)
    flicker = serializers.CharField(required=False)
    stack = serializers.CharField(required=False)
    heatmap = serializers.CharField(required=False)


class ItemDetailsSerializer(serializers.Serializer):
    """What made an item. ``source`` "sweep": a clamped style dimension; "lab": a Counterfactual lab run,
    whose ``method`` and ``target`` are given and whose dimension fields are null."""

    source = serializers.ChoiceField(choices=ReviewItem.Source.choices)
    dimension = serializers.IntegerField(allow_null=True)
    direction = serializers.CharField(allow_null=True)
    layer = serializers.CharField(allow_null=True)
    channel = serializers.IntegerField(allow_null=True)
    method = serializers.CharField(allow_null=True)
    target = serializers.IntegerField(allow_null=True)
    case = serializers.IntegerField()
    case_filename = serializers.CharField()
    rank_in_dimension = serializers.IntegerField(allow_null=True)


class ReviewItemSerializer(serializers.ModelSerializer):
    """An item as its reader sees it: ``position`` is the reader's own; ``details`` (what made the item: the
    dimension and direction, or the lab method and target; the case) is null while the set is blinded for the
    reader, and probabilities are null when the set hides them. In a confidence-change set, until the reader
    was shown the item's explanation (``POST /api/annotations/show-explanation/``), ``images`` holds only the
    original and the probabilities of the reconstruction and the perturbed image are null.
    """

    position = serializers.SerializerMethodField()
    prob_original = serializers.SerializerMethodField()
    prob_reconstruction = serializers.SerializerMethodField()
    prob_perturbed = serializers.SerializerMethodField()
    images = serializers.SerializerMethodField()
    details = serializers.SerializerMethodField()
    arm = serializers.ChoiceField(
        choices=ReviewItem.Arm.choices,
        read_only=True,
        help_text="counterfactual (answered with Q1 and Q2) or saliency (answered with saliency_relevant).",
    )

    class Meta:
        model = ReviewItem
        fields = [
            "id", "review_set", "position", "prob_original", "prob_reconstruction", "prob_perturbed", "images",
            "details", "arm",
        ]  # fmt: skip
        read_only_fields = fields

    def _view(self, item: ReviewItem) -> dict:
        return self.context["item_views"][item.review_set_id]

    @extend_schema_field(serializers.IntegerField())
    def get_position(self, item: ReviewItem) -> int:
        positions = self._view(item)["positions"]
        return positions[item.pk] if positions is not None else item.position

    def _probability(self, item: ReviewItem, value: float | None) -> float | None:
        return value if item.review_set.show_probabilities else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_prob_original(self, item: ReviewItem) -> float | None:
        return self._probability(item, item.prob_original)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_prob_reconstruction(self, item: ReviewItem) -> float | None:
        return None if self._hidden(item) else self._probability(item, item.prob_reconstruction)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_prob_perturbed(self, item: ReviewItem) -> float | None:
        return None if self._hidden(item) else self._probability(item, item.prob_perturbed)

    def _hidden(self, item: ReviewItem) -> bool:
        """The explanation waits for the reader's before-rating (confidence change)."""
        return item.pk in self._view(item).get("hidden", ())

    @extend_schema_field(ItemImagesSerializer)
    def get_images(self, item: ReviewItem) -> dict:
        request = self.context["request"]
        view = self._view(item)
        if view["positions"] is not None:
            position = view["positions"][item.pk]
            kwargs = {"set_pk": item.review_set_id, "position": position}
            kinds = item.images()
            hidden = self._hidden(item)
            return {
                kind: request.build_absolute_uri(
                    reverse("review-item-image", kwargs={**kwargs, "kind": kind})
                )
                for kind in ItemImagesSerializer().fields
                if kind in kinds and (not hidden or kind in BEFORE_STAGE_IMAGES)
            }
        files = item.images()
        return {
            kind: request.build_absolute_uri(reverse("media", kwargs={"path": f.name})) if f.name else ""
            for kind, f in files.items()
        }

    @extend_schema_field(ItemDetailsSerializer(allow_null=True))
    def get_details(self, item: ReviewItem) -> dict | None:
        if self._view(item)["blinded"]:
            return None
        case = item.case
        details = {
            "source": item.source,
            "dimension": None,
            "direction": None,
            "layer": None,
            "channel": None,
            "method": None,
            "target": None,
            "case": case.pk,
            "case_filename": case.original_filename,
            "rank_in_dimension": item.rank_in_dimension,
        }
        if item.lab_run_id:
            details.update(method=item.lab_run.method, target=item.lab_run.target)
        else:
            counterfactual = item.counterfactual
            dimension = counterfactual.dimension
            details.update(
                dimension=dimension.dim,
                direction=counterfactual.direction,
                layer=dimension.layer,
                channel=dimension.channel,
            )
        return details


class AnnotationSerializer(serializers.ModelSerializer):
    """A reader's answers on one item. Writing one stores a draft; ``"submit": true`` submits it, which
    requires Q1, a clinical description when Q1 is yes, and Q2. ``seconds`` adds reading time.

    POST and PATCH change only the answers they carry; PUT replaces them all. A submitted answer stays
    submitted (an edit leaving it incomplete is refused). Send the ``version`` you read to have the save
    refused with 409, and the newer answer kept, when someone saved a newer version in the meantime."""

    reader = serializers.CharField(source="reader.username", read_only=True)
    status = serializers.SerializerMethodField()
    submit = serializers.BooleanField(write_only=True, default=False)
    seconds = serializers.IntegerField(write_only=True, min_value=0, default=0)
    q1_meaningful = serializers.BooleanField(allow_null=True, default=None)
    clinical_description = serializers.CharField(
        allow_blank=True, default="", max_length=MAX_TEXT_LENGTH, trim_whitespace=True
    )
    q2_pneumonia = serializers.ChoiceField(choices=PneumoniaRelevance.choices, allow_blank=True, default="")
    comment = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)
    confidence = serializers.IntegerField(allow_null=True, default=None, min_value=1, max_value=5)
    version = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text="Read: the answer's version. Write: the version your edit is based on (checked when sent).",
    )
    flag = serializers.ChoiceField(choices=ItemFlag.choices, allow_blank=True, default="")
    region = serializers.ChoiceField(choices=ChestRegion.choices, allow_blank=True, default="")
    finding = serializers.ChoiceField(choices=Finding.choices, allow_blank=True, default="")
    saliency_relevant = serializers.BooleanField(allow_null=True, default=None)
    confidence_before = serializers.IntegerField(
        allow_null=True, default=None, min_value=1, max_value=5,
        help_text="Confidence-change sets: the rating from the original alone; 409 once the explanation was shown.",
    )  # fmt: skip
    confidence_after = serializers.IntegerField(
        allow_null=True, default=None, min_value=1, max_value=5,
        help_text="Confidence-change sets: the rating with the explanation; 409 before it was shown.",
    )  # fmt: skip

    class Meta:
        model = Annotation
        fields = [
            "id", "item", "reader", "q1_meaningful", "clinical_description", "q2_pneumonia", "comment",
            "confidence", "status", "submit", "seconds", "time_spent_seconds", "created_at", "updated_at",
            "submitted_at", "version", "flag", "region", "finding", "saliency_relevant", "confidence_before",
            "confidence_after", "explanation_shown_at",
        ]  # fmt: skip
        read_only_fields = [
            "id",
            "reader",
            "status",
            "explanation_shown_at",
            "time_spent_seconds",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        # (item, reader) is unique; the service updates the reader's answer on an item in place.
        validators = []

    @extend_schema_field(serializers.ChoiceField(choices=["draft", "submitted"]))
    def get_status(self, annotation: Annotation) -> str:
        return "draft" if annotation.is_draft else "submitted"

    def carried(self) -> list[str] | None:
        """The answers this request changes: those it sends, or None (all) for a PUT."""
        if self.instance is not None and not self.partial:
            return None
        return [name for name in ANSWER_FIELDS if name in self.initial_data]

    def answers(self) -> Answers:
        data, empty = self.validated_data, Answers()
        return Answers(**{name: data.get(name, getattr(empty, name)) for name in ANSWER_FIELDS})


class ShowExplanationSerializer(serializers.Serializer):
    """Confidence change: the item whose explanation to show, with the before-rating when it is not stored
    yet and, optionally, the answer's version the rating is based on."""

    item = serializers.PrimaryKeyRelatedField(queryset=ReviewItem.objects.select_related("review_set"))
    confidence_before = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=5)
    version = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


class FactorAnnotationSerializer(serializers.ModelSerializer):
    """A reader's name and relevance ratings for one style dimension of a review set, allowed once they
    submitted every item of that dimension."""

    reader = serializers.CharField(source="reader.username", read_only=True)
    factor_name = serializers.CharField(max_length=MAX_FACTOR_NAME_LENGTH)
    clinical_relevance = serializers.ChoiceField(choices=FactorRelevance.choices)
    pneumonia_relevance = serializers.ChoiceField(choices=FactorRelevance.choices)
    comment = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)

    class Meta:
        model = FactorAnnotation
        fields = [
            "id", "review_set", "dimension", "reader", "factor_name", "clinical_relevance",
            "pneumonia_relevance", "comment", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "reader", "created_at", "updated_at"]
        validators = []


class QuestionAgreementSerializer(serializers.Serializer):
    question = serializers.CharField()
    label = serializers.CharField()
    method = serializers.CharField()
    kappa = serializers.FloatField(allow_null=True)
    strength = serializers.CharField()
    observed = serializers.FloatField(allow_null=True)
    items = serializers.IntegerField()
    readers = serializers.IntegerField()
    note = serializers.CharField()


class DimensionVerdictSerializer(serializers.Serializer):
    dimension = serializers.IntegerField(source="dimension.dim")
    layer = serializers.CharField(source="dimension.layer")
    channel = serializers.IntegerField(source="dimension.channel")
    items = serializers.IntegerField()
    meaningful_items = serializers.IntegerField()
    relevant_items = serializers.IntegerField()
    names = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    clinical_majority = serializers.CharField()
    pneumonia_majority = serializers.CharField()
    clinically_meaningful = serializers.BooleanField()
    pneumonia_relevant = serializers.BooleanField()
    source = serializers.CharField()


class ReviewSummarySerializer(serializers.Serializer):
    readers = serializers.IntegerField()
    total_items = serializers.IntegerField()
    meaningful_items = serializers.IntegerField()
    relevant_items = serializers.IntegerField()
    meaningful_dimensions = serializers.IntegerField()
    relevant_dimensions = serializers.IntegerField()
    dimensions = DimensionVerdictSerializer(many=True)


class ResultsSerializer(serializers.Serializer):
    agreement = QuestionAgreementSerializer(many=True)
    summary = ReviewSummarySerializer()


class LabRunSerializer(serializers.ModelSerializer):
    """A Counterfactual-lab run: the method, its result's probabilities and metrics, and its files."""

    job = serializers.PrimaryKeyRelatedField(read_only=True)
    files = serializers.SerializerMethodField()

    class Meta:
        model = LabRun
        fields = [
            "id", "study", "case", "method", "target", "parameters", "status", "job", "prob_original",
            "prob_start", "prob_counterfactual", "flipped", "metrics", "details", "config", "seconds", "error",
            "files", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.URLField()))
    def get_files(self, run: LabRun) -> dict:
        request = self.context["request"]
        files = {
            "counterfactual": run.counterfactual_image,
            "start": run.start_image,
            "difference": run.difference_image,
            "heatmap": run.heatmap_image,
            "path": run.path_gif,
            "flicker": run.flicker_gif,
            "stack": run.stack_image,
        }
        return {
            kind: request.build_absolute_uri(reverse("media", kwargs={"path": f.name}))
            for kind, f in files.items()
            if f.name
        }


class LabRunLaunchSerializer(RefusesUnknownFields, serializers.Serializer):
    """Launching a lab run: the study's case, the method, the target (0/1 or the label's name; empty = the
    other class than the classifier's decision, or the decision itself for a saliency map) and the method's
    options."""

    study = serializers.PrimaryKeyRelatedField(queryset=Study.objects.all())
    case = serializers.PrimaryKeyRelatedField(queryset=Case.objects.all())
    method = serializers.ChoiceField(choices=LabRun.Method.choices)
    target = serializers.CharField(required=False, allow_blank=True, default="")
    parameters = serializers.DictField(required=False, default=dict)
