"""Sweeps (papers/003 Eq. 3-5): folders and units of the deltas, selection of dimensions, and the ranking and
curation of images per dimension."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.conf import settings

from explain_engine.selection import (
    BOOTSTRAP_FIELDS,
    CurationFilters,
    DimensionEffect,
    ImageFacts,
    Selection,
    curate,
    select_dimensions,
)
from explain_engine.sweep import (
    SweepConfig,
    delta_tolerance,
    open_deltas,
    plan_units,
    refine_screening,
    sweep_deltas,
)
from reviewapp.bridge.files import media_path, npy_facts
from reviewapp.bridge.models import AbortFn, engine_compile, load_study_models, module_device_description
from reviewapp.bridge.params import CURATION_PARAMETERS
from reviewapp.bridge.projection import load_styles


def new_sweep_config(sweep) -> dict[str, Any]:
    """The engine's ``SweepConfig`` of a sweep being launched, as stored in ``Sweep.config``: the sweep's
    mode and screening count, and this process's unit size (``SWEEP_IMAGE_CHUNK`` x ``SWEEP_DIM_CHUNK``)."""
    config = SweepConfig(
        mode=sweep.mode,
        screening_top_k=sweep.screening_top_k,
        image_chunk=settings.SWEEP_IMAGE_CHUNK,
        dim_chunk=settings.SWEEP_DIM_CHUNK,
    )
    return asdict(config)


def sweep_config(sweep) -> SweepConfig:
    """The ``SweepConfig`` every part of a sweep runs with: the one stored at launch, whatever this worker's
    settings (a sweep launched before configs were stored gets one built now)."""
    return SweepConfig(**(sweep.config or new_sweep_config(sweep)))


def new_sweep_folder(sweep) -> str:
    """A folder for a new sweep's files, unique even when a deleted sweep's primary key is used again."""
    return f"studies/{sweep.study_id}/sweeps/{sweep.pk}-{uuid.uuid4().hex[:8]}"


def sweep_folder(sweep) -> str:
    if not sweep.deltas_dir:
        raise ValueError(f"Sweep {sweep.pk} has no folder yet.")
    return sweep.deltas_dir


class SweepRunner:
    """A sweep's models and style vectors loaded once, to run one unit after another into its folder."""

    def __init__(self, sweep, projections: Sequence):
        self.sweep = sweep
        self.models = load_study_models(sweep.study)
        self.styles = load_styles(projections)
        self.config = sweep_config(sweep)
        self.folder = media_path(sweep_folder(sweep))

    @property
    def device(self) -> str:
        """Where this runner's units compute, as ``/healthz`` words it (recorded on each unit it finishes)."""
        return module_device_description(self.models.G)

    def prepare(self) -> list[dict[str, int]]:
        """Create the sweep's files (no unit runs) and return the plan of units as row values."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run_units([])
        plan = plan_units(self.styles.shape[0], self.styles.shape[1], self.config)
        return [
            {
                "index": unit.index,
                "image_start": unit.image_start,
                "image_stop": unit.image_stop,
                "dim_start": unit.dim_start,
                "dim_stop": unit.dim_stop,
            }
            for unit in plan
        ]

    def run_units(self, units: Sequence[int], *, abort_fn: AbortFn | None = None) -> tuple[float, int]:
        """Run ``units`` (skipping finished ones); returns (seconds, perturbed images the units took).

        A unit a lost worker finished on disk before it could record it is skipped here, and still counts its
        perturbations (as recorded when it was done), so a sweep's total does not depend on where workers died.

        Raises ``InterruptedError`` when ``abort_fn`` stops it.
        """
        result = sweep_deltas(
            self.models.G,
            self.models.classifier,
            self.styles,
            self.models.ranges,
            config=self.config,
            out_dir=self.folder,
            units=list(units),
            abort_fn=abort_fn,
            compile_models=engine_compile(),
        )
        return result.seconds, result.unit_perturbations

    def refine_screening(self, top: int) -> int:
        """Screening sweeps: make the ``top`` strongest screened dimensions (ranked as the sweep ranks them)
        exact on every image, in the sweep's files, so that their ranking mixes no estimates with exact values.
        Entries already exact are skipped, so running it again costs nothing.

        Returns the perturbations every refinement of this sweep has taken so far. They are kept in the sweep's
        folder (``refine.json``) as soon as a refinement ends, so a worker lost between refining and recording it
        in the database loses no count: the next run returns it again."""
        record = self.folder / "refine.json"
        total = int(json.loads(record.read_text())["perturbations"]) if record.exists() else 0
        if self.config.mode != "screening" or top <= 0:
            return total
        deltas = np.load(self.folder / "deltas.npy", mmap_mode="r+")
        exact_mask = np.load(self.folder / "exact_mask.npy", mmap_mode="r+")
        ranking = select_dimensions(
            np.asarray(deltas), self.models.G.style_layout, aggregate=self.sweep.aggregate
        )
        count = refine_screening(
            self.models.G,
            self.models.classifier,
            self.styles,
            self.models.ranges,
            deltas,
            exact_mask,
            ranking.top(top),
            config=self.config,
            compile_models=engine_compile(),
        )
        deltas.flush()
        exact_mask.flush()
        if count:
            total += count
            partial = record.with_name(record.name + ".part")
            partial.write_text(json.dumps({"perturbations": total}))
            partial.replace(record)
        return total

    @property
    def engine_config(self) -> dict:
        return asdict(self.config)


def sweep_deltas_facts(sweep) -> dict[str, Any]:
    facts = npy_facts(f"{sweep_folder(sweep)}/deltas.npy")
    return {"deltas_shape": facts["shape"], "deltas_dtype": facts["dtype"], "deltas_sha256": facts["sha256"]}


def sweep_precision_facts(sweep) -> dict[str, Any]:
    """The precision a finished sweep's deltas were computed in ("bf16" when any unit ran in bf16 on a GPU,
    else "float32") and the numeric tolerance selection allows them."""
    _, _, meta = open_deltas(media_path(sweep_folder(sweep)))
    return {"precision": meta["precision"], "tolerance": delta_tolerance(meta["precision"])}


def sweep_arrays(sweep) -> tuple[np.ndarray, np.ndarray]:
    """(deltas [N, D, 2], base probabilities [N]) of a finished sweep, memory-mapped."""
    deltas, base_probs, _ = open_deltas(media_path(sweep_folder(sweep)))
    return deltas, base_probs


def sweep_selection(sweep, *, tolerance: float | None = None) -> Selection:
    """Aggregate and rank every dimension of a finished sweep (papers/003 2.2), with bootstrap intervals over
    its images. ``tolerance``: the deltas' numeric tolerance (default: that of the precision they were computed
    in, see ``sweep_precision_facts``)."""
    deltas, _ = sweep_arrays(sweep)
    if tolerance is None:
        tolerance = sweep_precision_facts(sweep)["tolerance"]
    G = load_study_models(sweep.study, ranges=False).G
    return select_dimensions(
        np.asarray(deltas),
        G.style_layout,
        aggregate=sweep.aggregate,
        delta=sweep.delta,
        min_fraction=sweep.min_fraction,
        strongest_k=sweep.strongest_k,
        rule=sweep.rule,
        resamples=sweep.resamples,
        confidence=sweep.confidence,
        tolerance=tolerance,
    )


def dimension_effect_fields(selection: Selection) -> list[dict[str, Any]]:
    """Row values of every DimensionEffect of a selection (ranks counted from 1)."""
    return [
        {
            "dim": effect.dim,
            "layer": effect.layer,
            "channel": effect.channel,
            "kind": effect.kind,
            "resolution": effect.resolution,
            "rank": effect.rank + 1,
            "effect": _or_zero(effect.effect),
            "direction": effect.direction,
            "raises_score": bool(effect.raises_score),
            "selected": bool(effect.selected),
            "mean_low": _or_zero(effect.mean_low),
            "mean_high": _or_zero(effect.mean_high),
            "mean_abs_low": _or_zero(effect.mean_abs_low),
            "mean_abs_high": _or_zero(effect.mean_abs_high),
            "fraction_low": _or_zero(effect.fraction_low),
            "fraction_high": _or_zero(effect.fraction_high),
            "max_abs": _or_zero(effect.max_abs),
            **{name: _or_none(getattr(effect, name)) for name in BOOTSTRAP_FIELDS},
            "borderline": bool(effect.borderline),
            "borderline_reason": effect.borderline_reason[:300],
        }
        for effect in selection.ranking
    ]


def _or_zero(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


def _or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def dimension_changes(sweep, dim: int, direction: str) -> np.ndarray:
    """Per image, the change of the score when ``dim`` is clamped in ``direction``: r [N]."""
    deltas, _ = sweep_arrays(sweep)
    column = np.asarray(deltas[:, dim, :], dtype=np.float64)
    return -column[:, 0] if direction == "low" else column[:, 1]


def rank_images(sweep, dim: int, direction: str, *, count: int) -> list[int]:
    """Indices (rows of the sweep) of the ``count`` images whose score changes most when ``dim`` is clamped
    in ``direction``: the engine's curation ranking with no image filtered out."""
    deltas, base_probs = sweep_arrays(sweep)
    images = deltas.shape[0]
    effect = DimensionEffect(
        dim=dim,
        layer="",
        channel=0,
        kind="",
        resolution=0,
        effect=0.0,
        direction=direction,
        raises_score=False,
        rank=0,
        selected=True,
        mean_low=0.0,
        mean_high=0.0,
        mean_abs_low=0.0,
        mean_abs_high=0.0,
        fraction_low=0.0,
        fraction_high=0.0,
        max_abs=0.0,
    )
    everyone = ImageFacts(prob_original=np.ones(images), prob_reconstruction=np.ones(images))
    keep_all = CurationFilters(
        images_per_dimension=count,
        min_confidence=0.0,
        min_psnr=None,
        min_ssim=None,
        max_perceptual=None,
        max_prob_diff=None,
    )
    curation = curate(deltas, np.asarray(base_probs), [effect], everyone, keep_all)
    return [candidate.image_index for candidate in curation.items[dim]]


def image_facts(projections: Sequence) -> ImageFacts:
    """The per-image facts curation filters on, in sweep order."""

    def column(name: str) -> np.ndarray:
        return np.array([getattr(p, name) if getattr(p, name) is not None else np.nan for p in projections])

    # -1: label unknown; the engine then asks only for a confident prediction.
    labels = np.array([p.case.label if p.case.label is not None else -1 for p in projections])
    return ImageFacts(
        prob_original=column("prob_original"),
        prob_reconstruction=column("prob_reconstruction"),
        labels=labels,
        psnr=column("psnr"),
        ssim=column("ssim"),
        perceptual=column("perceptual"),
    )


def curation_filters(review_set) -> CurationFilters:
    """A review set's curation parameters as the engine's ``CurationFilters`` (the fields have its names)."""
    return CurationFilters(**{name: getattr(review_set, name) for name in CURATION_PARAMETERS})


@dataclass
class CuratedItem:
    dim: int
    image_index: int
    direction: str
    change: float
    rank_in_dimension: int


def curate_items(review_set, dimensions: Sequence, projections: Sequence) -> tuple[list[CuratedItem], dict]:
    """Pick review items for ``dimensions`` (DimensionEffect rows of the review set's sweep) with the review
    set's own curation parameters.

    Returns the items and a summary (the filters and how many images each dropped) for the ReviewSet row.
    """
    deltas, base_probs = sweep_arrays(review_set.sweep)
    effects = sweep_selection_for(dimensions)
    filters = curation_filters(review_set)
    curation = curate(np.asarray(deltas), np.asarray(base_probs), effects, image_facts(projections), filters)
    items = []
    for dim, candidates in curation.items.items():
        for rank, candidate in enumerate(candidates, start=1):
            items.append(
                CuratedItem(
                    dim=int(dim),
                    image_index=int(candidate.image_index),
                    direction=candidate.direction,
                    change=float(candidate.change),
                    rank_in_dimension=rank,
                )
            )
    summary = {
        "filters": curation.filters or asdict(filters),
        "dropped": {key: int(value) for key, value in curation.dropped.items()},
        "eligible_images": int(np.count_nonzero(curation.eligible)),
        "images": len(projections),
    }
    return items, summary


def sweep_selection_for(dimensions: Sequence) -> list:
    """Engine DimensionEffects rebuilt from rows, for curation."""
    return [
        DimensionEffect(
            dim=row.dim,
            layer=row.layer,
            channel=row.channel,
            kind=row.kind,
            resolution=row.resolution,
            effect=row.effect,
            direction=row.direction,
            raises_score=row.raises_score,
            rank=row.rank - 1,
            selected=True,
            mean_low=row.mean_low,
            mean_high=row.mean_high,
            mean_abs_low=row.mean_abs_low,
            mean_abs_high=row.mean_abs_high,
            fraction_low=row.fraction_low,
            fraction_high=row.fraction_high,
            max_abs=row.max_abs,
        )
        for row in dimensions
    ]
