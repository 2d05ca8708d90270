"""Review sets built directly with factories: dimensions x items, readers assigned, answers given."""

from __future__ import annotations

from collections.abc import Sequence

from reviewapp.models import Annotation, ReviewAssignment, ReviewItem, ReviewSet
from reviewapp.selectors.reviews import reader_item_ids
from tests.factories import (
    AnnotationFactory,
    CounterfactualFactory,
    DimensionEffectFactory,
    ReviewAssignmentFactory,
    ReviewItemFactory,
    ReviewSetFactory,
)


def review_set_with_items(
    *, readers: Sequence = (), dimensions: int = 2, images_per_dimension: int = 3, **options
) -> ReviewSet:
    """A ready review set of ``dimensions`` x ``images_per_dimension`` items (positions in dimension order), each
    on its own case, with ``readers`` assigned."""
    review_set = ReviewSetFactory(images_per_dimension=images_per_dimension, **options)
    position = 0
    for d in range(dimensions):
        dimension = DimensionEffectFactory(sweep=review_set.sweep, rank=d + 1, dim=1980 + 763 * d)
        for rank in range(1, images_per_dimension + 1):
            position += 1
            counterfactual = CounterfactualFactory(
                dimension=dimension,
                prob_reconstruction=0.30,
                prob_perturbed=round(0.30 + 0.1 * rank, 2),
            )
            ReviewItemFactory(
                review_set=review_set,
                counterfactual=counterfactual,
                position=position,
                rank_in_dimension=rank,
            )
    for reader in readers:
        ReviewAssignmentFactory(review_set=review_set, reader=reader)
    return review_set


def assignment_of(review_set: ReviewSet, reader) -> ReviewAssignment:
    return ReviewAssignment.objects.get(review_set=review_set, reader=reader)


def items_in_reader_order(review_set: ReviewSet, reader) -> list[ReviewItem]:
    ids = reader_item_ids(assignment=assignment_of(review_set, reader))
    items = ReviewItem.objects.in_bulk(ids)
    return [items[i] for i in ids]


def answer(item: ReviewItem, reader, **answers) -> Annotation:
    """A submitted answer (override any field, e.g. ``is_draft=True``)."""
    return AnnotationFactory(item=item, reader=reader, **answers)


def answer_all(review_set: ReviewSet, reader, answers: Sequence[dict] | None = None, **common) -> None:
    """Submit an answer for every item of the set, in position order (``answers[i]`` for the i-th item)."""
    for i, item in enumerate(review_set.items.order_by("position")):
        answer(item, reader, **{**common, **(answers[i] if answers else {})})
