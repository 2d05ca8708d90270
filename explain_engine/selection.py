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

Uncertainty. The held-out images are a sample, so every aggregate is an estimate. ``bootstrap_effects`` resamples
the images with replacement (``resamples`` times, seeded) and recomputes every aggregate of every dimension and
direction in one matrix product per block of resamples (resample counts [B, N] @ per-image values [N, 2D]); it
gives, per dimension and direction, a percentile interval at level ``confidence`` and the share of resamples in
which the dimension would be selected (its selection frequency). Two rules use the estimate:

* ``rule="estimate"`` (the paper's): selected when the effect on all images exceeds the threshold;
* ``rule="interval"``: selected when the interval's lower bound exceeds the threshold.

Under either rule a dimension that is not selected but could be is *borderline*, listed apart with its reason:
its interval reaches the threshold, or its value is within the deltas' numeric ``tolerance`` of it (bf16 on a
GPU; 0 for float32). A dimension is selected only when it clears the threshold by more than the tolerance, so a
precision error never flips a selection silently. With ``strongest_k`` the threshold is the K-th strongest effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .params import check, param

AGGREGATES = ("mean_abs", "fraction", "mean_raise")
RULES = ("estimate", "interval")
#: The bootstrap's per-dimension results, as named in ``DimensionEffect`` and ``bootstrap_effects``.
BOOTSTRAP_FIELDS = (
    "effect_lower",
    "effect_upper",
    "low_lower",
    "low_upper",
    "high_lower",
    "high_upper",
    "frequency",
    "frequency_low",
    "frequency_high",
)


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
    rule: str = param(
        "estimate",
        choices=RULES,
        help="estimate: the effect over all images exceeds the threshold; interval: its bootstrap lower bound does",
    )
    resamples: int = param(
        1000, min=0, max=10000, help="bootstrap resamples of the images for the intervals (0: no intervals)"
    )
    confidence: float = param(0.9, min=0.5, max=0.999, help="level of the two-sided bootstrap intervals")
    seed: int = param(0, min=0, max=2**31 - 1, help="seed of the bootstrap resampling")
    tolerance: float = param(
        0.0,
        min=0.0,
        max=0.5,
        help="numeric error of the deltas (bf16 on a GPU); dimensions within it of the threshold are borderline",
    )

    def __post_init__(self):
        check(self)
        if self.rule == "interval" and not self.resamples:
            raise ValueError("the interval rule needs resamples >= 1")


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
    # Bootstrap over the images (NaN when no resampling was asked for): the interval of the effect and of each
    # direction's aggregate, and the share of resamples selecting the dimension (and each direction).
    effect_lower: float = float("nan")
    effect_upper: float = float("nan")
    low_lower: float = float("nan")
    low_upper: float = float("nan")
    high_lower: float = float("nan")
    high_upper: float = float("nan")
    frequency: float = float("nan")
    frequency_low: float = float("nan")
    frequency_high: float = float("nan")
    borderline: bool = False  # not selected, but its interval or the numeric tolerance reaches the threshold
    borderline_reason: str = ""

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
    rule: str = "estimate"
    resamples: int = 0
    confidence: float = 0.9
    seed: int = 0
    tolerance: float = 0.0
    threshold: float = float("nan")  # what the rule compares with: delta, min_fraction or the K-th effect

    @property
    def selected(self) -> list[DimensionEffect]:
        return [e for e in self.ranking if e.selected]

    @property
    def borderline(self) -> list[DimensionEffect]:
        return [e for e in self.ranking if e.borderline]

    def top(self, k: int) -> list[int]:
        return [e.dim for e in self.ranking[:k]]


def changes(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r_low, r_high) [N, D] from deltas [N, D, 2] = (Delta-, Delta+)."""
    d = np.asarray(deltas, dtype=np.float64)
    return -d[..., 0], d[..., 1]


def _fraction_at_least(magnitude: np.ndarray, delta: float, finite: bool) -> np.ndarray:
    """Per column, the share of the finite entries of ``magnitude`` [N, D] that are >= ``delta``."""
    if finite:
        return np.count_nonzero(magnitude >= delta, axis=0) / magnitude.shape[0]
    with np.errstate(invalid="ignore"):
        return np.count_nonzero(magnitude >= delta, axis=0) / np.count_nonzero(~np.isnan(magnitude), axis=0)


def aggregate_effects(
    deltas: np.ndarray, *, aggregate: str = SelectionConfig.aggregate, delta: float = SelectionConfig.delta
) -> dict[str, np.ndarray]:
    """Per-dimension statistics [D] and the effect and direction under ``aggregate``. NaN entries are ignored."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    r_low, r_high = changes(deltas)
    # nanmean copies its input; the plain mean is used when every entry is finite (a finished exact sweep).
    finite = bool(np.isfinite(r_low).all() and np.isfinite(r_high).all())
    mean, amax = (np.mean, np.max) if finite else (np.nanmean, np.nanmax)
    abs_low, abs_high = np.abs(r_low), np.abs(r_high)
    with np.errstate(invalid="ignore"):
        stats = {
            "mean_low": mean(r_low, 0),
            "mean_high": mean(r_high, 0),
            "mean_abs_low": mean(abs_low, 0),
            "mean_abs_high": mean(abs_high, 0),
            "fraction_low": _fraction_at_least(abs_low, delta, finite),
            "fraction_high": _fraction_at_least(abs_high, delta, finite),
            "max_abs": amax(np.maximum(abs_low, abs_high), 0),
        }
    key = {"mean_abs": "mean_abs", "fraction": "fraction", "mean_raise": "mean"}[aggregate]
    lo, hi = stats[f"{key}_low"], stats[f"{key}_high"]
    stats["effect"] = np.maximum(lo, hi)
    stats["high_is_direction"] = hi >= lo
    mean_dir = np.where(stats["high_is_direction"], stats["mean_high"], stats["mean_low"])
    stats["raises_score"] = mean_dir > 0
    return stats


def _per_image_values(
    deltas: np.ndarray, aggregate: str, delta: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """What ``aggregate`` averages over images, per image: [N, 2D] float32 (low directions, then high), NaN set
    to 0, and the [N, 2D] mask of finite entries (None when every entry is finite)."""
    d = np.asarray(deltas, dtype=np.float32)
    values = np.concatenate([-d[..., 0], d[..., 1]], axis=1)
    finite = np.isfinite(values)
    if aggregate == "mean_abs":
        values = np.abs(values)
    elif aggregate == "fraction":
        with np.errstate(invalid="ignore"):
            values = (np.abs(values) >= delta).astype(np.float32)
    if finite.all():
        return values, None
    values[~finite] = 0.0
    return values, finite.astype(np.float32)


def bootstrap_effects(
    deltas: np.ndarray,
    *,
    aggregate: str = SelectionConfig.aggregate,
    delta: float = SelectionConfig.delta,
    threshold: float | None = None,
    strongest_k: int | None = None,
    resamples: int = SelectionConfig.resamples,
    confidence: float = SelectionConfig.confidence,
    seed: int = SelectionConfig.seed,
    block: int = 128,
) -> dict[str, np.ndarray]:
    """Bootstrap over the images of every dimension's aggregated effect.

    ``deltas`` [N, D, 2]. Each of ``resamples`` resamples draws N images with replacement (numpy generator seeded
    with ``seed``); the aggregates of all D dimensions and both directions are recomputed at once as a product of
    the resample counts [block, N] with the per-image values [N, 2D]. Returns [D] arrays: ``effect_lower`` /
    ``effect_upper`` (percentile interval of the effect, the larger direction in each resample, at level
    ``confidence``), ``low_lower`` ... ``high_upper`` (each direction's aggregate) and ``frequency`` /
    ``frequency_low`` / ``frequency_high``: the share of resamples in which the effect (a direction's aggregate)
    exceeds ``threshold`` (default: ``min_fraction``'s default for the fraction aggregate, else ``delta``), or
    with ``strongest_k`` ranks among the K strongest.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if threshold is None:
        threshold = SelectionConfig.min_fraction if aggregate == "fraction" else delta
    values, finite = _per_image_values(deltas, aggregate, delta)
    n, two_d = values.shape
    dims = two_d // 2
    rng = np.random.default_rng(seed)
    per_direction = np.empty((resamples, two_d), np.float32)
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float32)
        sums = counts @ values
        if finite is None:
            per_direction[start : start + b] = sums / n
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                per_direction[start : start + b] = sums / (counts @ finite)
    low, high = per_direction[:, :dims], per_direction[:, dims:]
    effect = np.fmax(low, high)
    alpha = (1.0 - confidence) / 2.0
    quantile = np.quantile if finite is None else np.nanquantile  # a dimension with no finite delta stays NaN
    with np.errstate(invalid="ignore"):
        q_effect, q_low, q_high = (quantile(x, [alpha, 1 - alpha], axis=0) for x in (effect, low, high))
    if strongest_k is not None:
        k = min(strongest_k, dims)
        kth = np.partition(np.nan_to_num(effect, nan=-np.inf), dims - k, axis=1)[:, dims - k][:, None]

        def chosen(x: np.ndarray) -> np.ndarray:
            return (x >= kth) & (x > 0)
    else:

        def chosen(x: np.ndarray) -> np.ndarray:
            return x > threshold

    return {
        "effect_lower": q_effect[0],
        "effect_upper": q_effect[1],
        "low_lower": q_low[0],
        "low_upper": q_low[1],
        "high_lower": q_high[0],
        "high_upper": q_high[1],
        "frequency": chosen(effect).mean(0),
        "frequency_low": chosen(low).mean(0),
        "frequency_high": chosen(high).mean(0),
    }


def _precision_bounds(
    deltas: np.ndarray, effect: np.ndarray, aggregate: str, delta: float, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest effect [D] the exact deltas could give when each stored delta may be off by up
    to ``tolerance``: the effect -/+ the tolerance for the means, the fractions at delta +/- tolerance."""
    if tolerance <= 0:
        return effect, effect
    if aggregate != "fraction":
        return effect - tolerance, effect + tolerance
    smallest = aggregate_effects(deltas, aggregate="fraction", delta=delta + tolerance)["effect"]
    largest = aggregate_effects(deltas, aggregate="fraction", delta=max(delta - tolerance, 0.0))["effect"]
    return smallest, largest


def select_dimensions(
    deltas: np.ndarray,
    layout,
    *,
    aggregate: str = SelectionConfig.aggregate,
    delta: float = SelectionConfig.delta,
    min_fraction: float = SelectionConfig.min_fraction,
    image_mask: np.ndarray | None = None,
    strongest_k: int | None = SelectionConfig.strongest_k,
    rule: str = SelectionConfig.rule,
    resamples: int = SelectionConfig.resamples,
    confidence: float = SelectionConfig.confidence,
    seed: int = SelectionConfig.seed,
    tolerance: float = SelectionConfig.tolerance,
) -> Selection:
    """Rank all D dimensions by their aggregated effect over the images and select them under ``rule`` (or, with
    ``strongest_k``, the ``strongest_k`` strongest ones that have any effect); dimensions that miss the
    selection but whose bootstrap interval or numeric tolerance reaches the threshold are marked borderline.

    ``deltas``: [N, D, 2] (a memory-mapped sweep works); ``layout``: the generator's ``StyleLayout``;
    ``image_mask``: optional [N] bool, the held-out images to aggregate over. The parameters are those of
    :class:`SelectionConfig` and are checked against its bounds; ``resamples=0`` skips the bootstrap.
    """
    SelectionConfig(
        aggregate=aggregate,
        delta=delta,
        min_fraction=min_fraction,
        strongest_k=strongest_k,
        rule=rule,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        tolerance=tolerance,
    )
    deltas = np.asarray(deltas)
    if deltas.ndim != 3 or deltas.shape[2] != 2 or deltas.shape[1] != layout.dims:
        raise ValueError(f"deltas must be [N, {layout.dims}, 2], got {list(deltas.shape)}")
    if image_mask is not None:
        deltas = deltas[np.asarray(image_mask, bool)]
    if len(deltas) == 0:
        raise ValueError("no images to aggregate over")
    st = aggregate_effects(deltas, aggregate=aggregate, delta=delta)
    effect = st["effect"]
    order = np.argsort(-np.nan_to_num(effect, nan=-np.inf), kind="stable")
    rank_of = np.empty(len(order), np.int64)
    rank_of[order] = np.arange(len(order))
    smallest, largest = _precision_bounds(deltas, effect, aggregate, delta, tolerance)
    if strongest_k is not None:
        kth = order[min(strongest_k, len(order)) - 1]
        threshold = float(effect[kth])
        selected = (rank_of < strongest_k) & (effect > 0)
        # Another dimension could take a place in the K when its effect could reach the K-th's.
        reach_precision = ~selected & (largest >= smallest[kth]) & (largest > 0) & (tolerance > 0)
    else:
        threshold = min_fraction if aggregate == "fraction" else delta
        statistic = effect
    boot = None
    if resamples:
        boot = bootstrap_effects(
            deltas,
            aggregate=aggregate,
            delta=delta,
            threshold=threshold,
            strongest_k=strongest_k,
            resamples=resamples,
            confidence=confidence,
            seed=seed,
        )
    if strongest_k is None:
        if rule == "interval" and boot is not None:
            statistic = boot["effect_lower"]
        with np.errstate(invalid="ignore"):
            # The deltas' possible error moves the statistic as it moves the effect.
            selected = statistic - (effect - smallest) > threshold
            reach_precision = ~selected & (statistic + (largest - effect) > threshold)
    with np.errstate(invalid="ignore"):
        reach_interval = ~selected & (boot["effect_upper"] > threshold if boot else False)
        if strongest_k is not None and boot is not None:
            reach_interval = ~selected & (boot["effect_upper"] >= threshold) & (boot["effect_upper"] > 0)
    nan = np.full(len(effect), np.nan)
    b = boot or {}
    ranking = []
    for rank, d in enumerate(order.tolist()):
        layer, channel = layout.locate(d)
        reasons = []
        if reach_interval[d]:
            reasons.append(
                f"its {confidence:.0%} interval [{b['effect_lower'][d]:.3f}, {b['effect_upper'][d]:.3f}] "
                f"reaches the threshold {threshold:.3g}"
            )
        if reach_precision[d]:
            reasons.append(
                f"within the deltas' numeric tolerance {tolerance:g} of the threshold {threshold:.3g}"
            )
        ranking.append(
            DimensionEffect(
                dim=d,
                layer=layer.name,
                channel=channel,
                kind=layer.kind,
                resolution=layer.resolution,
                effect=float(effect[d]),
                direction="high" if st["high_is_direction"][d] else "low",
                raises_score=bool(st["raises_score"][d]),
                rank=rank,
                selected=bool(selected[d]),
                mean_low=float(st["mean_low"][d]),
                mean_high=float(st["mean_high"][d]),
                mean_abs_low=float(st["mean_abs_low"][d]),
                mean_abs_high=float(st["mean_abs_high"][d]),
                fraction_low=float(st["fraction_low"][d]),
                fraction_high=float(st["fraction_high"][d]),
                max_abs=float(st["max_abs"][d]),
                **{key: float(b.get(key, nan)[d]) for key in BOOTSTRAP_FIELDS},
                borderline=bool(reasons),
                borderline_reason="; ".join(reasons),
            )
        )
    return Selection(
        aggregate=aggregate,
        delta=delta,
        min_fraction=min_fraction,
        num_images=len(deltas),
        ranking=ranking,
        strongest_k=strongest_k,
        rule=rule,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        tolerance=tolerance,
        threshold=threshold,
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
