"""Metrics of a binary classifier: discrimination (AUROC, accuracy) and calibration (ECE, Brier score).

All functions take plain sequences or numpy arrays: ``labels`` ``[N]`` in {0, 1} (1 = the target finding is
present) and ``scores`` / ``probabilities`` ``[N]``, and return Python floats or small dataclasses, so that
results serialise to JSON as they are. Inputs that cannot give a meaningful number (different lengths, labels
other than 0/1, NaN scores, probabilities outside [0, 1]) raise ``ValueError`` with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "CalibrationSummary",
    "ReliabilityBin",
    "accuracy",
    "auroc",
    "brier_score",
    "calibration_summary",
    "classification_metrics",
    "expected_calibration_error",
    "reliability_table",
]

ArrayLike = Sequence[float] | np.ndarray


def _labels(labels: ArrayLike) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional [N], got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"labels must be 0 or 1, found {bad.tolist()}")
    return y.astype(np.int64)


def _scores(scores: ArrayLike, n: int, *, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"{name} must have the shape of labels ({n},), got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return s


def _probabilities(probabilities: ArrayLike, n: int) -> np.ndarray:
    p = _scores(probabilities, n, name="probabilities")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"probabilities must lie in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]")
    return p


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N of ``values``, tied values sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve, exactly, from ranks (the Mann-Whitney U statistic over n_pos * n_neg).

    It is the probability that a random positive scores higher than a random negative, ties counting one half.
    Any monotone score works (probabilities, logits).

    Args:
        labels: ``[N]`` 0/1.
        scores: ``[N]`` higher = more likely positive.

    Raises:
        ValueError: when labels hold only one class (the AUROC is undefined) or inputs are malformed.
    """
    y = _labels(labels)
    s = _scores(scores, y.size)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; got {n_pos} positives and {n_neg} negatives")
    rank_sum = _midranks(s)[y == 1].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def accuracy(labels: ArrayLike, probabilities: ArrayLike, *, threshold: float = 0.5) -> float:
    """Fraction of cases whose decision ``probability >= threshold`` equals the label."""
    y = _labels(labels)
    p = _probabilities(probabilities, y.size)
    if y.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(((p >= threshold).astype(np.int64) == y).mean())


def brier_score(labels: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome (0 = perfect)."""
    y = _labels(labels)
    p = _probabilities(probabilities, y.size)
    if y.size == 0:
        raise ValueError("the Brier score of an empty set is undefined")
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram over the predicted probability of the positive class.

    Attributes:
        lower, upper: the bin's probability interval ``[lower, upper)`` (the last bin includes 1.0).
        count: cases whose predicted probability falls in the bin.
        mean_probability: their mean predicted probability (NaN when empty).
        observed_frequency: the fraction of them that are positive (NaN when empty).
    """

    lower: float
    upper: float
    count: int
    mean_probability: float
    observed_frequency: float

    @property
    def gap(self) -> float:
        """``|observed_frequency - mean_probability|`` (NaN when empty)."""
        return abs(self.observed_frequency - self.mean_probability)


def reliability_table(
    labels: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins of the positive-class probability over [0, 1] with each bin's mean prediction and
    observed positive rate: the numbers behind a reliability diagram."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y = _labels(labels)
    p = _probabilities(probabilities, y.size)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # np.digitize puts p == 1.0 past the last edge; clip it into the last bin.
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    table = []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        table.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_probability=float(p[members].mean()) if count else float("nan"),
                observed_frequency=float(y[members].mean()) if count else float("nan"),
            )
        )
    return table


def expected_calibration_error(labels: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean over equal-width probability bins of
    ``|observed positive rate - mean predicted probability|``.

    This is the positive-class (reliability-diagram) form for a binary classifier, which is what matters when
    0.5 is read as the decision threshold and the probability itself is shown to readers.
    """
    return _ece(reliability_table(labels, probabilities, n_bins=n_bins))


def _ece(table: list[ReliabilityBin]) -> float:
    n = sum(b.count for b in table)
    if n == 0:
        raise ValueError("calibration of an empty set is undefined")
    return float(sum(b.count * b.gap for b in table if b.count) / n)


@dataclass(frozen=True)
class CalibrationSummary:
    """ECE, Brier score and the reliability table of one set of predictions."""

    ece: float
    brier: float
    n_bins: int
    bins: list[ReliabilityBin] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable; empty bins carry NaN)."""
        return asdict(self)


def calibration_summary(
    labels: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10
) -> CalibrationSummary:
    """ECE (``n_bins`` equal-width bins), Brier score and the reliability table, computed once."""
    table = reliability_table(labels, probabilities, n_bins=n_bins)
    return CalibrationSummary(
        ece=_ece(table), brier=brier_score(labels, probabilities), n_bins=n_bins, bins=table
    )


def classification_metrics(labels: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10) -> dict:
    """The usual summary of a binary classifier as a JSON-ready dict.

    Keys: ``n``, ``prevalence``, ``auroc`` (NaN when only one class is present), ``accuracy`` (at 0.5),
    ``ece``, ``brier`` and ``reliability`` (list of bin dicts).
    """
    y = _labels(labels)
    p = _probabilities(probabilities, y.size)
    if y.size == 0:
        raise ValueError("metrics of an empty set are undefined")
    both_classes = 0 < y.sum() < y.size
    cal = calibration_summary(y, p, n_bins=n_bins)
    return {
        "n": int(y.size),
        "prevalence": float(y.mean()),
        "auroc": auroc(y, p) if both_classes else float("nan"),
        "accuracy": accuracy(y, p),
        "ece": cal.ece,
        "brier": cal.brier,
        "reliability": [asdict(b) for b in cal.bins],
    }
