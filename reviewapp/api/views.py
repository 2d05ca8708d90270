"""API viewsets. Reviewers' querysets are always filtered by the requesting reader."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Case as When_Case
from django.db.models import IntegerField, QuerySet, Value, When
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from reviewapp.api import serializers as s
from reviewapp.api.pagination import Pages
from reviewapp.api.permissions import IsAdmin, IsAdminOrReviewer
from reviewapp.api.renderers import CSVRenderer
from reviewapp.inputs import ID_MAX
from reviewapp.models import (
    Annotation,
    AuditAction,
    Case,
    DimensionEffect,
    FactorAnnotation,
    LabRun,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
)
from reviewapp.selectors import exports
from reviewapp.selectors.agreement import review_set_agreement, review_set_summary
from reviewapp.selectors.reviews import (
    reader_item_ids,
    reader_items_explanation_hidden,
    worklist_for_reader,
)
from reviewapp.selectors.users import user_is_admin
from reviewapp.services import audit
from reviewapp.services.annotations import (
    AnswerConflict,
    annotation_save_draft,
    annotation_show_explanation,
    annotation_submit,
    factor_annotation_save,
)
from reviewapp.services.lab import lab_run_create
from reviewapp.services.sweeps import sweep_launch
from reviewapp.views.results import csv_stream


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the state of the resource."
    default_code = "conflict"


def raise_as_api_error(error: DjangoValidationError) -> None:
    """A service's ValidationError as a 400, or a 409 when it conflicts with what is stored: the reader
    finalised the set, the before-rating was frozen when the explanation was shown, or an answer about the
    explanation comes before it was shown."""
    if getattr(error, "code", None) in ("finalised", "frozen", "not_shown"):
        raise Conflict(error.messages[0])
    if isinstance(error, AnswerConflict):
        conflict = Conflict({"detail": error.messages[0]})
        conflict.detail["version"] = error.current.version  # a number, not an error message
        raise conflict
    if hasattr(error, "error_dict"):
        raise ValidationError(error.message_dict)
    raise ValidationError({"non_field_errors": error.messages})


CSV_RESPONSE = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A CSV file, streamed.")}


# --------------------------------------------------------------------------------------------------
# Admins: studies, cases, sweeps, dimensions


class StudyViewSet(viewsets.ReadOnlyModelViewSet):
    """Studies: a generator, a classifier and the label they are audited for."""

    queryset = Study.objects.all()
    serializer_class = s.StudySerializer
    permission_classes = [IsAdmin]
    pagination_class = Pages
    filterset_fields = {"name": ["exact", "icontains"], "target_label": ["exact"]}
    ordering_fields = ["created_at", "name"]

    @extend_schema(summary="The study's factor catalogue as CSV", responses=CSV_RESPONSE)
    @action(
        detail=True, methods=["get"], url_path="factors-csv", renderer_classes=[CSVRenderer, JSONRenderer]
    )
    def factors_csv(self, request, pk=None, format=None):
        study = self.get_object()
        audit.record(request.user, AuditAction.EXPORT, study, table="factors", via="api")
        header = exports.header(exports.FACTOR_COLUMNS)
        return csv_stream(f"factors-{study.pk}.csv", header, exports.factor_catalogue_rows(study=study))


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cases of the studies (images are served to admins through /media/)."""

    queryset = Case.objects.all()
    serializer_class = s.CaseSerializer
    permission_classes = [IsAdmin]
    pagination_class = Pages
    filterset_fields = ["study", "split", "label"]
    ordering_fields = ["created_at", "original_filename"]


@extend_schema_view(
    create=extend_schema(
        summary="Launch a sweep",
        description="Creates the sweep and queues its job; poll the sweep (or /jobs/<job>/progress) for status.",
        request=s.SweepLaunchSerializer,
        responses={201: s.SweepSerializer},
    )
)
class SweepViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Sweeps of StyleSpace; creating one launches it."""

    queryset = Sweep.objects.all()
    serializer_class = s.SweepSerializer
    permission_classes = [IsAdmin]
    pagination_class = Pages
    filterset_fields = ["study", "status", "mode"]
    ordering_fields = ["created_at"]

    def get_serializer_class(self):
        return s.SweepLaunchSerializer if self.action == "create" else s.SweepSerializer

    def create(self, request, *args, **kwargs):
        serializer = s.SweepLaunchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        study, cases = data.pop("study"), data.pop("cases", None)
        try:
            sweep = sweep_launch(study=study, cases=cases, created_by=request.user, **data)
        except DjangoValidationError as error:
            raise_as_api_error(error)
        return Response(s.SweepSerializer(sweep).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="The sweep's dimension table as CSV", responses=CSV_RESPONSE)
    @action(
        detail=True, methods=["get"], url_path="dimensions-csv", renderer_classes=[CSVRenderer, JSONRenderer]
    )
    def dimensions_csv(self, request, pk=None, format=None):
        sweep = self.get_object()
        audit.record(request.user, AuditAction.EXPORT, sweep, table="dimensions", via="api")
        header = exports.header(exports.DIMENSION_COLUMNS)
        return csv_stream(
            f"sweep-{sweep.pk}-dimensions.csv", header, exports.dimension_table_rows(sweep=sweep)
        )


@extend_schema_view(
    create=extend_schema(
        summary="Launch a Counterfactual-lab run",
        description="Validates the run, stores it and queues its job; poll the run (or /jobs/<job>/progress).",
        request=s.LabRunLaunchSerializer,
        responses={201: s.LabRunSerializer},
    )
)
class LabRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Counterfactual-lab runs: one method on one case; creating one launches it."""

    queryset = LabRun.objects.all()
    serializer_class = s.LabRunSerializer
    permission_classes = [IsAdmin]
    pagination_class = Pages
    filterset_fields = ["study", "case", "method", "status"]
    ordering_fields = ["created_at"]

    def get_serializer_class(self):
        return s.LabRunLaunchSerializer if self.action == "create" else s.LabRunSerializer

    def create(self, request, *args, **kwargs):
        launch = s.LabRunLaunchSerializer(data=request.data)
        launch.is_valid(raise_exception=True)
        data = launch.validated_data
        try:
            run = lab_run_create(
                study=data["study"],
                case=data["case"],
                method=data["method"],
                target=data["target"] or None,
                parameters=data["parameters"],
                created_by=request.user,
            )
        except DjangoValidationError as error:
            raise_as_api_error(error)
        body = s.LabRunSerializer(run, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)


class DimensionFilter(django_filters.FilterSet):
    min_effect = django_filters.NumberFilter(field_name="effect", lookup_expr="gte")

    class Meta:
        model = DimensionEffect
        fields = ["sweep", "selected", "kind", "layer", "direction", "dim"]


class DimensionViewSet(viewsets.ReadOnlyModelViewSet):
    """The effect of every style dimension in a sweep (filter by ``sweep``, ``selected``, ``min_effect``)."""

    queryset = DimensionEffect.objects.all()
    serializer_class = s.DimensionSerializer
    permission_classes = [IsAdmin]
    pagination_class = Pages
    filterset_class = DimensionFilter
    ordering_fields = ["rank", "effect", "dim"]


# --------------------------------------------------------------------------------------------------
# Review sets and items: admins see all, reviewers the sets assigned to them


def _assigned_set_ids(user) -> list[int]:
    return list(
        ReviewAssignment.objects.filter(reader=user, review_set__status=ReviewSet.Status.READY).values_list(
            "review_set_id", flat=True
        )
    )


REVIEW_TABLES = {
    "reviews": (exports.REVIEW_COLUMNS, exports.review_table_rows, "reviews"),
    "agreement": (exports.AGREEMENT_COLUMNS, exports.agreement_rows, "agreement"),
    "dimensions": (exports.SUMMARY_COLUMNS, exports.summary_rows, "dimension-verdicts"),
}


class ReviewSetViewSet(viewsets.ReadOnlyModelViewSet):
    """Review sets. Reviewers see the ready sets assigned to them, with their own progress."""

    serializer_class = s.ReviewSetSerializer
    permission_classes = [IsAdminOrReviewer]
    pagination_class = Pages
    filterset_fields = ["study", "sweep", "status"]
    ordering_fields = ["created_at", "name"]

    def get_queryset(self) -> QuerySet[ReviewSet]:
        if getattr(self, "swagger_fake_view", False):
            return ReviewSet.objects.none()
        sets = ReviewSet.objects.all()
        if not user_is_admin(self.request.user):
            sets = sets.filter(pk__in=_assigned_set_ids(self.request.user))
        return sets

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        entries = worklist_for_reader(reader=self.request.user)
        context["progress"] = {
            e.review_set.pk: {
                "answered": e.answered,
                "drafts": e.drafts,
                "total": e.total,
                "finalised_at": e.assignment.finalised_at,
            }
            for e in entries
        }
        return context

    @extend_schema(summary="Agreement per question and per-dimension verdicts", responses=s.ResultsSerializer)
    @action(detail=True, methods=["get"], permission_classes=[IsAdmin])
    def results(self, request, pk=None, format=None):
        review_set = self.get_object()
        data = {
            "agreement": review_set_agreement(review_set=review_set),
            "summary": review_set_summary(review_set=review_set),
        }
        return Response(s.ResultsSerializer(data).data)

    @extend_schema(
        summary="Export a table of the review set as CSV",
        parameters=[
            OpenApiParameter(
                "table", str, enum=list(REVIEW_TABLES), description="Which table (default reviews)."
            ),
            OpenApiParameter("drafts", bool, description="Include draft answers in the review table."),
        ],
        responses=CSV_RESPONSE,
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[IsAdmin],
        renderer_classes=[CSVRenderer, JSONRenderer],
    )
    def export(self, request, pk=None, format=None):
        review_set = self.get_object()
        table = request.query_params.get("table", "reviews")
        if table not in REVIEW_TABLES:
            raise ValidationError({"table": f"Choose one of {', '.join(REVIEW_TABLES)}."})
        columns, rows_of, stem = REVIEW_TABLES[table]
        if table == "reviews":
            rows = rows_of(
                review_set=review_set, include_drafts=request.query_params.get("drafts") in ("1", "true")
            )
        else:
            rows = rows_of(review_set=review_set)
        audit.record(request.user, AuditAction.EXPORT, review_set, table=table, via="api")
        return csv_stream(f"{stem}-{review_set.pk}.csv", exports.header(columns), rows)


class ReviewItemFilter(django_filters.FilterSet):
    class Meta:
        model = ReviewItem
        fields = ["review_set"]


class ReviewItemViewSet(viewsets.ReadOnlyModelViewSet):
    """Review items. Reviewers get the items of their sets in their own order, blinded as the set says."""

    serializer_class = s.ReviewItemSerializer
    permission_classes = [IsAdminOrReviewer]
    pagination_class = Pages
    filterset_class = ReviewItemFilter
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    def _assignments(self) -> dict[int, ReviewAssignment]:
        if not hasattr(self, "_assignment_cache"):
            rows = ReviewAssignment.objects.filter(
                reader=self.request.user, review_set__status=ReviewSet.Status.READY
            ).select_related("review_set")
            self._assignment_cache = {a.review_set_id: a for a in rows}
        return self._assignment_cache

    def _reads_as_reviewer(self) -> bool:
        return not user_is_admin(self.request.user)

    def get_queryset(self) -> QuerySet[ReviewItem]:
        if getattr(self, "swagger_fake_view", False):
            return ReviewItem.objects.none()
        items = ReviewItem.objects.select_related(
            "review_set",
            "counterfactual",
            "counterfactual__dimension",
            "counterfactual__projection",
            "counterfactual__projection__case",
            "lab_run",
            "lab_run__case",
        )
        if not self._reads_as_reviewer():
            return items.order_by("review_set", "position")
        assignments = self._assignments()
        items = items.filter(review_set__in=list(assignments))
        # The reader's own order: their position of each item (no curation order leaks through sorting).
        whens = [
            When(pk=item_id, then=Value(position))
            for assignment in assignments.values()
            for position, item_id in enumerate(reader_item_ids(assignment=assignment), start=1)
        ]
        if not whens:
            return items.none()
        position = When_Case(*whens, output_field=IntegerField())
        return items.annotate(reader_position=position).order_by("review_set", "reader_position")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        views = {}
        if self._reads_as_reviewer():
            for set_id, assignment in self._assignments().items():
                ids = reader_item_ids(assignment=assignment)
                views[set_id] = {
                    "positions": {item_id: n for n, item_id in enumerate(ids, start=1)},
                    "blinded": assignment.review_set.blinded and assignment.finalised_at is None,
                    "hidden": reader_items_explanation_hidden(assignment=assignment),
                }
        else:
            for set_id in ReviewSet.objects.values_list("pk", flat=True):
                views[set_id] = {"positions": None, "blinded": False, "hidden": set()}
        context["item_views"] = views
        return context


# --------------------------------------------------------------------------------------------------
# Answers: everyone writes only their own; admins read all


class IdFilter(django_filters.NumberFilter):
    """An id in a query string: an integer a 64-bit id can hold, else a 400 (a plain ``NumberFilter`` hands
    any decimal to the database driver)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


class AnnotationFilter(django_filters.FilterSet):
    review_set = IdFilter(field_name="item__review_set")
    reader = django_filters.CharFilter(field_name="reader__username")
    status = django_filters.ChoiceFilter(
        choices=[("draft", "draft"), ("submitted", "submitted")], method="filter_status"
    )

    class Meta:
        model = Annotation
        fields = ["item", "review_set", "reader", "status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(is_draft=value == "draft")


class _OwnAnswers:
    """Shared by annotations and factor annotations: who sees what, and which assignment a write belongs to."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        rows = self.model.objects.select_related("reader")
        if user_is_admin(self.request.user):
            return rows
        return rows.filter(reader=self.request.user)

    def assignment_for(self, review_set_id: int) -> ReviewAssignment:
        assignment = (
            ReviewAssignment.objects.filter(
                reader=self.request.user, review_set=review_set_id, review_set__status=ReviewSet.Status.READY
            )
            .select_related("review_set", "reader")
            .first()
        )
        if assignment is None:
            raise ValidationError({"non_field_errors": ["You are not assigned to this review set."]})
        return assignment

    def check_owner(self, instance) -> None:
        if instance.reader_id != self.request.user.pk:
            raise Conflict("Only the reader who wrote an answer can change it.")


@extend_schema_view(
    create=extend_schema(summary="Save (or submit) your answer on an item; updates it if it exists"),
)
class AnnotationViewSet(
    _OwnAnswers,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Answers to the review protocol. Reviewers see and write only their own; admins read everyone's."""

    model = Annotation
    serializer_class = s.AnnotationSerializer
    permission_classes = [IsAdminOrReviewer]
    pagination_class = Pages
    filterset_class = AnnotationFilter
    ordering_fields = ["updated_at", "created_at"]

    def _save(self, serializer, item: ReviewItem, *, status_code: int) -> Response:
        assignment = self.assignment_for(item.review_set_id)
        store = annotation_submit if serializer.validated_data.get("submit") else annotation_save_draft
        try:
            annotation = store(
                assignment=assignment,
                item=item,
                answers=serializer.answers(),
                seconds=serializer.validated_data.get("seconds", 0),
                fields=serializer.carried(),
                version=serializer.validated_data.get("version"),
            )
        except DjangoValidationError as error:
            raise_as_api_error(error)
        return Response(s.AnnotationSerializer(annotation).data, status=status_code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = serializer.validated_data["item"]
        exists = Annotation.objects.filter(item=item, reader=request.user).exists()
        return self._save(
            serializer, item, status_code=status.HTTP_200_OK if exists else status.HTTP_201_CREATED
        )

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        self.check_owner(instance)
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        item = serializer.validated_data.get("item", instance.item)
        if item.pk != instance.item_id:
            raise ValidationError({"item": ["An answer cannot move to another item."]})
        return self._save(serializer, instance.item, status_code=status.HTTP_200_OK)

    @extend_schema(
        summary="Confidence change: be shown an item's explanation (freezes your before-rating)",
        request=s.ShowExplanationSerializer,
        responses=s.AnnotationSerializer,
    )
    @action(detail=False, methods=["post"], url_path="show-explanation")
    def show_explanation(self, request, format=None):
        """In a confidence-change set, the item's explanation (images but the original, probabilities but
        the original's) is served to its reader only after this call, which needs the before-rating (stored,
        or sent as ``confidence_before``). From then on a change of the before-rating is refused with 409."""
        serializer = s.ShowExplanationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = data["item"]
        assignment = self.assignment_for(item.review_set_id)
        try:
            annotation = annotation_show_explanation(
                assignment=assignment,
                item=item,
                confidence_before=data.get("confidence_before"),
                version=data.get("version"),
            )
        except DjangoValidationError as error:
            raise_as_api_error(error)
        return Response(s.AnnotationSerializer(annotation).data)


class FactorAnnotationFilter(django_filters.FilterSet):
    reader = django_filters.CharFilter(field_name="reader__username")

    class Meta:
        model = FactorAnnotation
        fields = ["review_set", "dimension", "reader"]


class FactorAnnotationViewSet(
    _OwnAnswers,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Names and relevance ratings of style dimensions. In a blinded set a reviewer refers to a dimension
    by its id (``DimensionEffect``), which the factor page of the app shows only as a letter."""

    model = FactorAnnotation
    serializer_class = s.FactorAnnotationSerializer
    permission_classes = [IsAdminOrReviewer]
    pagination_class = Pages
    filterset_class = FactorAnnotationFilter

    def _save(self, data: dict, *, review_set: ReviewSet, dimension: DimensionEffect, status_code: int):
        assignment = self.assignment_for(review_set.pk)
        try:
            factor = factor_annotation_save(
                assignment=assignment,
                dimension=dimension,
                factor_name=data["factor_name"],
                clinical_relevance=data["clinical_relevance"],
                pneumonia_relevance=data["pneumonia_relevance"],
                comment=data.get("comment", ""),
            )
        except DjangoValidationError as error:
            raise_as_api_error(error)
        return Response(s.FactorAnnotationSerializer(factor).data, status=status_code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        exists = FactorAnnotation.objects.filter(
            review_set=data["review_set"], dimension=data["dimension"], reader=request.user
        ).exists()
        return self._save(
            data,
            review_set=data["review_set"],
            dimension=data["dimension"],
            status_code=status.HTTP_200_OK if exists else status.HTTP_201_CREATED,
        )

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        self.check_owner(instance)
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        for name in ("review_set", "dimension"):
            if name in serializer.validated_data and serializer.validated_data[name].pk != getattr(
                instance, f"{name}_id"
            ):
                raise ValidationError(
                    {name: ["A factor annotation cannot move to another dimension or set."]}
                )
        merged = {
            name: serializer.validated_data.get(name, getattr(instance, name))
            for name in ("factor_name", "clinical_relevance", "pneumonia_relevance", "comment")
        }
        return self._save(
            merged,
            review_set=instance.review_set,
            dimension=instance.dimension,
            status_code=status.HTTP_200_OK,
        )
