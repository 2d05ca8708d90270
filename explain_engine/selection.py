"""Aggregation of sweep deltas, selection of dimensions and curation of review items (papers/003 2.2, 3.1).

Notation: for image i and dimension d, ``r_high = C(S^{d+}) - C(S) = Delta+`` and ``r_low = C(S^{d-}) - C(S) =
-Delta-`` are the changes of the classifier score when s_d is clamped to its high or low value.

Aggregates (the paper says only that "delta values across the entire set exceed a preset value delta"):

* ``mean_abs`` (default): per direction, the mean over images of |r|; the dimension's effect is the larger of the
  two directions. A dimension is selected when its effect exceeds ``delta``.
* ``fraction``: per direction, the fraction of images with |r| >= ``delta``; selected when it exceeds
  ``min_fraction``.
* ``mean_raise``: per direction, the mean signed r (how much clamping raises the target score on average); the
  effect is the larger of the two; selected when it exceeds ``delta``.

Alternatively, ``strongest_k`` selects the K dimensions with the largest effect whatever its size: the paper treats delta
as a hyperparameter and reviews 10 dimensions, and on a classifier whose scores are mostly saturated (near 0 or 1)
no single clamp moves the score by delta on average, so a fixed delta can select nothing.

Every dimension gets a rank over all D by its effect. Its ``direction`` ("low" or "high") is the clamp that gives
the effect, and ``raises_score`` says whether that clamp raises the target score on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .params import check, param

AGGREGATES = ("mean_abs", "fraction", "mean_raise")


@dataclass
class SelectionConfig:
    """How dimensions are selected from a sweep's deltas; each parameter's default and bounds are here."""

    aggregate: str = param("mean_abs", choices=AGGREGATES, help="how the changes over images are aggregated")
    delta: float = param(0.3, min=0.0, max=1.0, help="selection threshold on the aggregated effect")
    min_fraction: float = param(
        0.1,
        min=0.0,
        max=1.0,
        help="with the fraction aggregate: the share of images that selects a dimension",
    )
    strongest_k: int | None = param(
        None, min=1, max=5000, help="select the K strongest dimensions instead of those above the threshold"
    )

    def __post_init__(self):
        check(self)


@dataclass
class DimensionEffect:
    dim: int
    layer: str
    channel: int
    kind: str
    resolution: int
    effect: float
    direction: str  # "low" or "high": the clamp that produces the effect
    raises_score: bool
    rank: int
    selected: bool
    mean_low: float  # mean r_low over images
    mean_high: float  # mean r_high
    mean_abs_low: float
    mean_abs_high: float
    fraction_low: float  # fraction of images with |r_low| >= delta
    fraction_high: float
    max_abs: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Selection:
    aggregate: str
    delta: float
    min_fraction: float
    num_images: int
    ranking: list[DimensionEffect]  # all D, strongest first
    strongest_k: int | None = None  # when set, the K strongest dimensions are selected instead of a threshold

    @property
    def selected(self) -> list[DimensionEffect]:
        return [e for e in self.ranking if e.selected]

    def top(self, k: int) -> list[int]:
        return [e.dim for e in self.ranking[:k]]


def changes(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r_low, r_high) [N, D] from deltas [N, D, 2] = (Delta-, Delta+)."""
    d = np.asarray(deltas, dtype=np.float64)
    return -d[..., 0], d[..., 1]


def aggregate_effects(
    deltas: np.ndarray, *, aggregate: str = SelectionConfig.aggregate, delta: float = SelectionConfig.delta
) -> dict[str, np.ndarray]:
    """Per-dimension statistics [D] and the effect and direction under ``aggregate``. NaN entries are ignored."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    r_low, r_high = changes(deltas)
    with np.errstate(invalid="ignore"):
        stats = {
            "mean_low": np.nanmean(r_low, 0),
            "mean_high": np.nanmean(r_high, 0),
            "mean_abs_low": np.nanmean(np.abs(r_low), 0),
            "mean_abs_high": np.nanmean(np.abs(r_high), 0),
            "fraction_low": np.nanmean(np.abs(r_low) >= delta, 0),
            "fraction_high": np.nanmean(np.abs(r_high) >= delta, 0),
            "max_abs": np.nanmax(np.maximum(np.abs(r_low), np.abs(r_high)), 0),
        }
    key = {"mean_abs": "mean_abs", "fraction": "fraction", "mean_raise": "mean"}[aggregate]
    lo, hi = stats[f"{key}_low"], stats[f"{key}_high"]
    stats["effect"] = np.maximum(lo, hi)
    stats["high_is_direction"] = hi >= lo
    mean_dir = np.where(stats["high_is_direction"], stats["mean_high"], stats["mean_low"])
    stats["raises_score"] = mean_dir > 0
    return stats


def select_dimensions(
    deltas: np.ndarray,
    layout,
    *,
    aggregate: str = SelectionConfig.aggregate,
    delta: float = SelectionConfig.delta,
    min_fraction: float = SelectionConfig.min_fraction,
    image_mask: np.ndarray | None = None,
    strongest_k: int | None = SelectionConfig.strongest_k,
) -> Selection:
    """Rank all D dimensions by their aggregated effect over the images and select those above the threshold
    (or, with ``strongest_k``, the ``strongest_k`` strongest ones that have any effect).

    ``deltas``: [N, D, 2] (a memory-mapped sweep works); ``layout``: the generator's ``StyleLayout``;
    ``image_mask``: optional [N] bool, the held-out images to aggregate over. The parameters are those of
    :class:`SelectionConfig` and are checked against its bounds.
    """
    SelectionConfig(aggregate=aggregate, delta=delta, min_fraction=min_fraction, strongest_k=strongest_k)
    deltas = np.asarray(deltas)
    if deltas.ndim != 3 or deltas.shape[2] != 2 or deltas.shape[1] != layout.dims:
        raise ValueError(f"deltas must be [N, {layout.dims}, 2], got {list(deltas.shape)}")
    if image_mask is not None:
        deltas = deltas[np.asarray(image_mask, bool)]
    if len(deltas) == 0:
        raise ValueError("no images to aggregate over")
    st = aggregate_effects(deltas, aggregate=aggregate, delta=delta)
    threshold = min_fraction if aggregate == "fraction" else delta
    order = np.argsort(-np.nan_to_num(st["effect"], nan=-np.inf), kind="stable")
    ranking = []
    for rank, d in enumerate(order.tolist()):
        layer, channel = layout.locate(d)
        ranking.append(
            DimensionEffect(
                dim=d,
                layer=layer.name,
                channel=channel,
                kind=layer.kind,
                resolution=layer.resolution,
                effect=float(st["effect"][d]),
                direction="high" if st["high_is_direction"][d] else "low",
                raises_score=bool(st["raises_score"][d]),
                rank=rank,
                selected=bool(st["effect"][d] > 0 and rank < strongest_k)
                if strongest_k is not None
                else bool(st["effect"][d] > threshold),
                mean_low=float(st["mean_low"][d]),
                mean_high=float(st["mean_high"][d]),
                mean_abs_low=float(st["mean_abs_low"][d]),
                mean_abs_high=float(st["mean_abs_high"][d]),
                fraction_low=float(st["fraction_low"][d]),
                fraction_high=float(st["fraction_high"][d]),
                max_abs=float(st["max_abs"][d]),
            )
        )
    return Selection(
        aggregate=aggregate,
        delta=delta,
        min_fraction=min_fraction,
        num_images=len(deltas),
        ranking=ranking,
        strongest_k=strongest_k,
    )


# ---------------------------------------------------------------------------------------------------------------
# Curation


@dataclass
class CurationFilters:
    """How review items are curated from the selected dimensions (papers/003 3.1): how many images per
    dimension, and the filters an image must pass. None switches a filter off. Each parameter's default and
    bounds are here."""

    images_per_dimension: int = param(5, min=1, max=50, help="review items per dimension (paper: 5)")
    min_confidence: float = param(
        0.9,
        min=0.0,
        max=1.0,
        help="the classifier must be right with this confidence (labels known) or this sure (labels unknown)",
    )
    min_psnr: float | None = param(25.0, min=0.0, optional=True, help="dB; reconstruction fidelity")
    min_ssim: float | None = param(None, min=-1.0, max=1.0, help="reconstruction fidelity")
    max_perceptual: float | None = param(None, min=0.0, help="perceptual distance of the reconstruction")
    max_prob_diff: float | None = param(0.1, min=0.0, max=1.0, optional=True, help="largest |C(x) - C(G(S))|")

    def __post_init__(self):
        check(self)


@dataclass
class ImageFacts:
    """What curation needs to know about the N swept images (arrays [N])."""

    prob_original: np.ndarray
    prob_reconstruction: np.ndarray
    labels: np.ndarray | None = None  # 0/1, or -1 where unknown
    psnr: np.ndarray | None = None
    ssim: np.ndarray | None = None
    perceptual: np.ndarray | None = None


@dataclass
class ReviewCandidate:
    dim: int
    image_index: int
    direction: str
    change: float  # C(perturbed) - C(S) in the dimension's direction
    prob_base: float  # C(S)


@dataclass
class Curation:
    items: dict[int, list[ReviewCandidate]]  # per selected dim, the images_per_dimension strongest images
    eligible: np.ndarray  # [N] bool
    dropped: dict[str, int] = field(default_factory=dict)  # filter -> images failing it
    filters: dict = field(default_factory=dict)

    @property
    def all_items(self) -> list[ReviewCandidate]:
        return [c for items in self.items.values() for c in items]


def eligible_images(facts: ImageFacts, filters: CurationFilters) -> tuple[np.ndarray, dict[str, int]]:
    """[N] bool of images passing every filter, and how many images fail each filter (independently)."""
    p = np.asarray(facts.prob_original, np.float64)
    n = len(p)
    checks: dict[str, np.ndarray] = {}
    if facts.labels is not None:
        labels = np.asarray(facts.labels)
        known = labels >= 0
        right = np.where(labels == 1, p >= filters.min_confidence, p <= 1 - filters.min_confidence)
        checks["confidence"] = np.where(known, right, np.maximum(p, 1 - p) >= filters.min_confidence)
    else:
        checks["confidence"] = np.maximum(p, 1 - p) >= filters.min_confidence
    if filters.min_psnr is not None and facts.psnr is not None:
        checks["psnr"] = np.asarray(facts.psnr) >= filters.min_psnr
    if filters.min_ssim is not None and facts.ssim is not None:
        checks["ssim"] = np.asarray(facts.ssim) >= filters.min_ssim
    if filters.max_perceptual is not None and facts.perceptual is not None:
        checks["perceptual"] = np.asarray(facts.perceptual) <= filters.max_perceptual
    if filters.max_prob_diff is not None:
        diff = np.abs(p - np.asarray(facts.prob_reconstruction, np.float64))
        checks["prob_diff"] = diff <= filters.max_prob_diff
    ok = np.ones(n, bool)
    for v in checks.values():
        ok &= v
    return ok, {k: int((~v).sum()) for k, v in checks.items()}


def curate(
    deltas: np.ndarray,
    base_probs: np.ndarray,
    selection: Selection | Sequence[DimensionEffect],
    facts: ImageFacts,
    filters: CurationFilters | None = None,
) -> Curation:
    """Per selected dimension, the ``filters.images_per_dimension`` eligible images with the largest change,
    ordered by the size of the change (papers/003 3.1)."""
    filters = filters or CurationFilters()
    effects = selection.selected if isinstance(selection, Selection) else list(selection)
    ok, dropped = eligible_images(facts, filters)
    items: dict[int, list[ReviewCandidate]] = {}
    for e in effects:
        col = np.asarray(deltas[:, e.dim, :], np.float64)
        r = col[:, 1] if e.direction == "high" else -col[:, 0]
        magnitude = np.where(ok & np.isfinite(r), np.abs(r), -np.inf)
        order = np.argsort(-magnitude, kind="stable")[: filters.images_per_dimension]
        items[e.dim] = [
            ReviewCandidate(
                dim=e.dim,
                image_index=int(i),
                direction=e.direction,
                change=float(r[i]),
                prob_base=float(base_probs[i]),
            )
            for i in order
            if np.isfinite(magnitude[i])
        ]
    return Curation(items=items, eligible=ok, dropped=dropped, filters=asdict(filters))
