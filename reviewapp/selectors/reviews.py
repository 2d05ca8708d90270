"""Reads of the reviewer side: a reader's worklist, their item order, their answers and factor groups.

Every query here that returns answers is filtered by the reader: a reviewer never sees another's answers.
Positions are the reader's own 1-based order of a set's items (shuffled per reader when the set randomises),
so URLs and pages never reveal the curation order, and with it the dimension, of a blinded set.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet, Sum

from reviewapp.models import (
    Annotation,
    DimensionEffect,
    FactorAnnotation,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
)


def assignment_list_for_reader(*, reader: AbstractBaseUser) -> QuerySet[ReviewAssignment]:
    """The reader's assignments on review sets that are ready to read, newest set first."""
    return (
        ReviewAssignment.objects.filter(reader=reader, review_set__status=ReviewSet.Status.READY)
        .select_related("review_set", "review_set__study", "reader")
        .order_by("finalised_at", "-review_set__created_at", "-pk")
    )


@dataclass(frozen=True)
class WorklistEntry:
    assignment: ReviewAssignment
    total: int
    answered: int
    drafts: int

    @property
    def review_set(self) -> ReviewSet:
        return self.assignment.review_set

    @property
    def finalised(self) -> bool:
        return self.assignment.finalised_at is not None

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.answered == self.total

    @property
    def percent(self) -> int:
        return round(100 * self.answered / self.total) if self.total else 0


def worklist_for_reader(*, reader: AbstractBaseUser) -> list[WorklistEntry]:
    """The reader's review sets with how many items they submitted ("12 / 50") and how many are drafts."""
    assignments = list(assignment_list_for_reader(reader=reader))
    set_ids = [a.review_set_id for a in assignments]
    totals = dict(
        ReviewItem.objects.filter(review_set__in=set_ids)
        .values_list("review_set")
        .annotate(n=Count("pk"))
        .values_list("review_set", "n")
    )
    counts = {
        row["item__review_set"]: row
        for row in Annotation.objects.filter(reader=reader, item__review_set__in=set_ids)
        .values("item__review_set")
        .annotate(answered=Count("pk", filter=Q(is_draft=False)), drafts=Count("pk", filter=Q(is_draft=True)))
    }
    return [
        WorklistEntry(
            assignment=a,
            total=totals.get(a.review_set_id, 0),
            answered=counts.get(a.review_set_id, {}).get("answered", 0),
            drafts=counts.get(a.review_set_id, {}).get("drafts", 0),
        )
        for a in assignments
    ]


def reader_item_ids(*, assignment: ReviewAssignment) -> list[int]:
    """The set's item ids in this reader's order (stable across sessions: it comes from the order seed)."""
    ids = list(ReviewItem.objects.filter(review_set=assignment.review_set_id).values_list("pk", flat=True))
    return assignment.ordered(ids)


def reader_item_at(*, assignment: ReviewAssignment, position: int) -> ReviewItem | None:
    """The item at the reader's 1-based ``position``, with everything the reading screen shows."""
    ids = reader_item_ids(assignment=assignment)
    if not 1 <= position <= len(ids):
        return None
    return (
        ReviewItem.objects.select_related(
            "review_set",
            "review_set__study",
            "counterfactual",
            "counterfactual__dimension",
            "counterfactual__projection",
            "counterfactual__projection__case",
            "lab_run",
            "lab_run__case",
        )
        .filter(pk=ids[position - 1])
        .first()
    )


def reader_annotations(*, assignment: ReviewAssignment) -> dict[int, Annotation]:
    """Item id -> the reader's own annotation, for the items of the assignment's set."""
    rows = Annotation.objects.filter(reader=assignment.reader_id, item__review_set=assignment.review_set_id)
    return {a.item_id: a for a in rows}


def reader_annotation(*, assignment: ReviewAssignment, item: ReviewItem) -> Annotation | None:
    return Annotation.objects.filter(reader=assignment.reader_id, item=item).first()


def reader_resume_position(*, assignment: ReviewAssignment) -> int | None:
    """The position of the reader's first item without a submitted answer; None when all are answered."""
    answered = set(
        Annotation.objects.filter(
            reader=assignment.reader_id, item__review_set=assignment.review_set_id, is_draft=False
        ).values_list("item_id", flat=True)
    )
    for position, item_id in enumerate(reader_item_ids(assignment=assignment), start=1):
        if item_id not in answered:
            return position
    return None


@dataclass
class FactorGroup:
    """The items of one style dimension, as one reader sees them: named by a letter in a blinded set."""

    number: int
    dimension: DimensionEffect
    label: str
    positions: list[int] = field(default_factory=list)
    answered: int = 0
    factor: FactorAnnotation | None = None

    @property
    def complete(self) -> bool:
        return self.answered == len(self.positions)

    @property
    def named(self) -> bool:
        return self.factor is not None and bool(self.factor.factor_name)


def factor_label(number: int) -> str:
    """ "Factor A", ..., "Factor Z", "Factor AA", ...: a name that does not reveal the dimension."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = string.ascii_uppercase[rest] + letters
    return f"Factor {letters}"


def reader_factor_groups(*, assignment: ReviewAssignment) -> list[FactorGroup]:
    """The set's dimensions in the order the reader first meets them, with the reader's positions of their
    items, how many the reader answered, and the reader's factor annotation."""
    review_set = assignment.review_set
    ids = reader_item_ids(assignment=assignment)
    position_of = {item_id: position for position, item_id in enumerate(ids, start=1)}
    # Lab items have no style dimension and so no factor.
    dimension_of = dict(
        ReviewItem.objects.filter(review_set=review_set, counterfactual__isnull=False).values_list(
            "pk", "counterfactual__dimension"
        )
    )
    dimensions = DimensionEffect.objects.in_bulk(set(dimension_of.values()))
    answered = set(
        Annotation.objects.filter(
            reader=assignment.reader_id, item__review_set=review_set, is_draft=False
        ).values_list("item_id", flat=True)
    )
    factors = {
        f.dimension_id: f
        for f in FactorAnnotation.objects.filter(review_set=review_set, reader=assignment.reader_id)
    }
    groups: dict[int, FactorGroup] = {}
    for item_id in ids:
        dimension_id = dimension_of.get(item_id)
        if dimension_id is None:
            continue
        group = groups.get(dimension_id)
        if group is None:
            dimension = dimensions[dimension_id]
            number = len(groups) + 1
            label = factor_label(number) if review_set.blinded else f"Dimension {dimension.dim}"
            group = groups[dimension_id] = FactorGroup(
                number=number, dimension=dimension, label=label, factor=factors.get(dimension_id)
            )
        group.positions.append(position_of[item_id])
        group.answered += item_id in answered
    return list(groups.values())


def reader_factor_group_of(*, assignment: ReviewAssignment, item: ReviewItem) -> FactorGroup | None:
    """The factor of a sweep item; None for a lab item, which belongs to no style dimension."""
    if item.counterfactual_id is None:
        return None
    dimension_id = item.counterfactual.dimension_id
    return next(g for g in reader_factor_groups(assignment=assignment) if g.dimension.pk == dimension_id)


def reader_can_explore(*, reader: AbstractBaseUser, case_id: int) -> bool:
    """Reviewers may explore a case once they finalised a set that shows it (blinding no longer matters)."""
    shows_case = Q(review_set__items__counterfactual__projection__case=case_id) | Q(
        review_set__items__lab_run__case=case_id
    )
    return ReviewAssignment.objects.filter(shows_case, reader=reader, finalised_at__isnull=False).exists()


@dataclass(frozen=True)
class ItemDisplay:
    """What the reading screen shows about an item beyond its images."""

    prob_original: float | None
    prob_reconstruction: float | None
    prob_perturbed: float | None
    #: Dimension, direction, layer and case (method, target and case for a lab item); None while the set is
    #: blinded and the reader has not finalised.
    details: dict[str, str] | None


#: The images a reader sees of an item while its explanation is hidden (confidence change, before-stage).
BEFORE_STAGE_IMAGES = ("original",)


def explanation_hidden(*, review_set: ReviewSet, annotation: Annotation | None, finalised: bool) -> bool:
    """Whether an item's explanation stays hidden from its reader: the set asks for the confidence change,
    the reader's assignment is open, and their answer records no showing of the explanation yet."""
    return bool(
        review_set.confidence_change
        and not finalised
        and (annotation is None or annotation.explanation_shown_at is None)
    )


def reader_explanation_hidden(*, assignment: ReviewAssignment, item: ReviewItem) -> bool:
    """:func:`explanation_hidden` for the reader of ``assignment`` on ``item``."""
    if not assignment.review_set.confidence_change:
        return False
    return explanation_hidden(
        review_set=assignment.review_set,
        annotation=reader_annotation(assignment=assignment, item=item),
        finalised=assignment.finalised_at is not None,
    )


def reader_items_explanation_hidden(*, assignment: ReviewAssignment) -> set[int]:
    """Ids of the reader's items whose explanation stays hidden from them (see :func:`explanation_hidden`)."""
    review_set = assignment.review_set
    if not review_set.confidence_change or assignment.finalised_at is not None:
        return set()
    shown = Annotation.objects.filter(
        reader=assignment.reader_id, item__review_set=review_set.pk, explanation_shown_at__isnull=False
    ).values_list("item_id", flat=True)
    return set(reader_item_ids(assignment=assignment)) - set(shown)


def item_display(*, assignment: ReviewAssignment, item: ReviewItem) -> ItemDisplay:
    """What the reader sees of the item beside the images: probabilities (none of the explanation's while
    it is hidden) and, unblinded, what made the item."""
    review_set = item.review_set
    show = review_set.show_probabilities
    hidden = reader_explanation_hidden(assignment=assignment, item=item)
    details = None
    if not review_set.blinded or assignment.finalised_at is not None:
        if item.lab_run_id:
            run = item.lab_run
            details = {
                "Method": run.get_method_display(),
                "Target": run.target_name,
                "Case": run.case.original_filename,
            }
        else:
            counterfactual = item.counterfactual
            dimension = counterfactual.dimension
            details = {
                "Dimension": str(dimension.dim),
                "Direction": counterfactual.get_direction_display(),
                "Layer": f"{dimension.layer} channel {dimension.channel}",
                "Case": counterfactual.projection.case.original_filename,
            }
    return ItemDisplay(
        prob_original=item.prob_original if show else None,
        prob_reconstruction=item.prob_reconstruction if show and not hidden else None,
        prob_perturbed=item.prob_perturbed if show and not hidden else None,
        details=details,
    )


def reader_next_position(*, assignment: ReviewAssignment, after: int) -> int | None:
    """The next position after ``after`` (wrapping around) whose item the reader has not submitted."""
    ids = reader_item_ids(assignment=assignment)
    answered = set(
        Annotation.objects.filter(
            reader=assignment.reader_id, item__review_set=assignment.review_set_id, is_draft=False
        ).values_list("item_id", flat=True)
    )
    total = len(ids)
    for step in range(1, total + 1):
        position = (after - 1 + step) % total + 1
        if ids[position - 1] not in answered:
            return position
    return None


@dataclass(frozen=True)
class ReaderProgress:
    reader: str
    answered: int
    drafts: int
    total: int
    finalised_at: object | None
    seconds: int


def review_set_progress(*, review_set: ReviewSet) -> list[ReaderProgress]:
    """For admins: every assigned reader's progress on the set (never shown to reviewers)."""
    total = review_set.items.count()
    counts = {
        row["reader"]: row
        for row in Annotation.objects.filter(item__review_set=review_set)
        .values("reader")
        .annotate(
            answered=Count("pk", filter=Q(is_draft=False)),
            drafts=Count("pk", filter=Q(is_draft=True)),
            seconds=Sum("time_spent_seconds"),
        )
    }
    progress = []
    for assignment in review_set.assignments.select_related("reader").order_by("reader__username"):
        row = counts.get(assignment.reader_id, {})
        progress.append(
            ReaderProgress(
                reader=assignment.reader.get_username(),
                answered=row.get("answered", 0),
                drafts=row.get("drafts", 0),
                total=total,
                finalised_at=assignment.finalised_at,
                seconds=row.get("seconds") or 0,
            )
        )
    return progress
