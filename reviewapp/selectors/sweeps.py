"""Reads of sweep results: the dimension table, a dimension's gallery, review-set items for admins."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, QuerySet

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


#: How many of the latest finished units the rate of a running sweep is measured over.
RATE_WINDOW_UNITS = 24


@dataclass(frozen=True)
class SweepRate:
    """How fast a sweep ran on this installation's workers, measured on its finished units (wall clock).

    ``units_per_second`` counts whole units over the span from the first start to the last finish of the
    measured units, so several workers sharing a sweep are counted in; ``perturbations_per_second`` is the same
    rate in perturbed images evaluated. ``devices``: what the measured units ran on (empty for units recorded
    before devices were), so that an estimate can say which hardware it holds for.
    """

    sweep_pk: int
    units: int
    seconds: float
    units_per_second: float
    perturbations_per_second: float
    mode: str
    devices: tuple[str, ...] = ()


def sweep_rate(*, sweep: Sweep, window: int | None = None) -> SweepRate | None:
    """The measured rate of ``sweep`` over its last ``window`` finished units (all of them when None).

    Only units started by the sweep's latest job are measured, so the idle time of a cancelled and resumed
    sweep is not counted. None when no unit is done or no time has passed.
    """
    units = SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE, finished_at__isnull=False)
    job = sweep.job if sweep.job_id else None
    if job is not None and job.started_at is not None:
        units = units.filter(started_at__gte=job.started_at)
    rows = list(
        units.order_by("-finished_at").values("started_at", "finished_at", "device")[: window or None]
    )
    done_total = SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE).count()
    if not rows or not done_total or sweep.perturbations <= 0:
        return None
    starts = [row["started_at"] for row in rows if row["started_at"] is not None]
    if not starts:
        return None
    seconds = (max(row["finished_at"] for row in rows) - min(starts)).total_seconds()
    if seconds <= 0:
        return None
    units_per_second = len(rows) / seconds
    per_unit = sweep.perturbations / done_total
    return SweepRate(
        sweep_pk=sweep.pk,
        units=len(rows),
        seconds=seconds,
        units_per_second=units_per_second,
        perturbations_per_second=units_per_second * per_unit,
        mode=sweep.mode,
        devices=tuple(sorted({row["device"] for row in rows if row["device"]})),
    )


def sweep_devices(*, sweep: Sweep) -> list[str]:
    """The devices a sweep's finished units ran on, most units first (empty when none was recorded)."""
    rows = (
        SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE)
        .exclude(device="")
        .values("device")
        .annotate(n=Count("pk"))
        .order_by("-n", "device")
    )
    return [row["device"] for row in rows]


def sweep_eta_seconds(*, sweep: Sweep) -> float | None:
    """Seconds left of a running sweep's units at the rate of its latest units; None before one is done."""
    if sweep.status != Sweep.Status.RUNNING:
        return None
    rate = sweep_rate(sweep=sweep, window=RATE_WINDOW_UNITS)
    if rate is None:
        return None
    left = SweepUnit.objects.filter(sweep=sweep).exclude(status=SweepUnit.Status.DONE).count()
    return round(left / rate.units_per_second, 1)


def sweep_rate_for_study(*, study) -> SweepRate | None:
    """The rate of the latest sweep (any outcome) that ran the study's models here, for estimates.

    Sweeps of the study come first, then sweeps of other studies with the same generator and classifier.
    """
    candidates = Sweep.objects.filter(perturbations__gt=0).order_by("-created_at", "-pk")
    same_models = candidates.filter(
        study__generator_sha256=study.generator_sha256, study__classifier_sha256=study.classifier_sha256
    ).exclude(study=study)
    for queryset in (candidates.filter(study=study), same_models if study.generator_sha256 else None):
        if queryset is None:
            continue
        for sweep in queryset[:5]:
            rate = sweep_rate(sweep=sweep)
            if rate is not None:
                return rate
    return None


def sweep_planned_perturbations(*, mode: str, images: int, dims: int, screening_top_k: int) -> int:
    """Perturbed images a sweep evaluates: 2 per dimension per image (exact); in screening mode 2 per top-k
    dimension and one gradient pass per image (counted as one, as the engine counts it)."""
    if mode == Sweep.Mode.SCREENING:
        return images * (2 * min(screening_top_k, dims) + 1)
    return 2 * images * dims


def sweep_unit_progress(*, sweep: Sweep) -> dict:
    """What a sweep's page polls: status, units, perturbations so far and the measured rate."""
    counts = sweep_unit_counts(sweep=sweep)
    rate = sweep_rate(sweep=sweep, window=RATE_WINDOW_UNITS)
    return {
        "id": sweep.pk,
        "status": sweep.status,
        "status_display": sweep.get_status_display(),
        "perturbations": sweep.perturbations,
        "units_done": counts[SweepUnit.Status.DONE],
        "units_total": counts["total"],
        "perturbations_per_second": round(rate.perturbations_per_second, 2) if rate else None,
        "eta_seconds": sweep_eta_seconds(sweep=sweep),
    }
