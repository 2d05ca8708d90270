"""Reads of sweep results: the dimension table, a dimension's gallery, review-set items for admins."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import F, QuerySet

from reviewapp.models import (
    Counterfactual,
    DimensionEffect,
    Projection,
    ReviewItem,
    ReviewSet,
    Sweep,
    SweepCase,
    SweepUnit,
)

#: Sortable columns of the dimension table: query value -> order_by field.
DIMENSION_SORTS = {
    "rank": "rank",
    "dim": "dim",
    "layer": "layer",
    "resolution": "resolution",
    "effect": "-effect",
    "low": "-mean_abs_low",
    "high": "-mean_abs_high",
    "max": "-max_abs",
    "lower": "-effect_lower",
    "frequency": "-frequency",
}


def sweep_projections(sweep: Sweep) -> list[Projection]:
    """The sweep's projections in the order of the rows of its deltas."""
    rows = SweepCase.objects.filter(sweep=sweep).select_related("projection__case").order_by("index")
    return [row.projection for row in rows]


def dimension_table(*, sweep: Sweep, sort: str = "rank", page: int = 1, per_page: int = 50) -> Page:
    """All D dimensions, the selected ones on top, then the borderline ones, then the others, each group
    ordered by ``sort`` (a key of DIMENSION_SORTS; dimensions without an interval last)."""
    field = DIMENSION_SORTS.get(sort, "rank")
    order = F(field[1:]).desc(nulls_last=True) if field.startswith("-") else F(field).asc(nulls_last=True)
    rows = DimensionEffect.objects.filter(sweep=sweep).order_by("-selected", "-borderline", order, "rank")
    return Paginator(rows, per_page).get_page(page)


def borderline_dimensions(*, sweep: Sweep) -> QuerySet[DimensionEffect]:
    """The dimensions the selection left out but could have taken (interval or numeric tolerance), strongest
    first."""
    return DimensionEffect.objects.filter(sweep=sweep, borderline=True).order_by("rank")


def sweep_unit_counts(*, sweep: Sweep) -> dict[str, int]:
    counts = {status: 0 for status in SweepUnit.Status.values}
    for status in SweepUnit.objects.filter(sweep=sweep).values_list("status", flat=True):
        counts[status] += 1
    counts["total"] = sum(counts.values())
    return counts


@dataclass(frozen=True)
class GalleryEntry:
    counterfactual: Counterfactual
    image_index: int

    @property
    def case(self):
        return self.counterfactual.projection.case

    @property
    def projection(self):
        return self.counterfactual.projection


def dimension_gallery(*, dimension: DimensionEffect, count: int | None = None) -> list[GalleryEntry]:
    """The rendered counterfactuals of a dimension in its effect direction, largest change first."""
    index_of = dict(dimension.sweep.sweep_cases.values_list("projection_id", "index"))
    rows = list(
        Counterfactual.objects.filter(dimension=dimension, direction=dimension.direction)
        .select_related("projection__case")
        .order_by("pk")
    )
    rows.sort(key=lambda cf: -abs(cf.change))
    entries = [GalleryEntry(counterfactual=cf, image_index=index_of.get(cf.projection_id, -1)) for cf in rows]
    return entries[:count] if count else entries


def review_set_items(*, review_set: ReviewSet) -> QuerySet[ReviewItem]:
    """The set's items in curation order, with everything their stack shows."""
    return (
        ReviewItem.objects.filter(review_set=review_set)
        .select_related(
            "counterfactual__projection__case", "counterfactual__dimension", "lab_run__case", "lab_run__study"
        )
        .order_by("position")
    )


def sweep_dimension(*, sweep: Sweep, dim: int) -> DimensionEffect | None:
    return DimensionEffect.objects.filter(sweep=sweep, dim=dim).first()


CURATION_DROP_REASONS = {
    "confidence": "classifier wrong or not confident enough",
    "psnr": "reconstruction PSNR too low",
    "ssim": "reconstruction SSIM too low",
    "perceptual": "reconstruction perceptually too far",
    "prob_diff": "reconstruction changes the classifier's score",
}


def review_set_curation_drops(*, review_set: ReviewSet) -> list[tuple[str, int]]:
    """(reason, number of swept images it removed) for each curation filter, as people read them."""
    dropped = review_set.curation.get("dropped", {})
    return [(CURATION_DROP_REASONS.get(key, key), count) for key, count in dropped.items()]
