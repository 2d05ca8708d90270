"""Plots of sweep results, rendered with matplotlib (Agg) to PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

INK = "#1d2430"
ACCENT = "#1f5fa8"
SELECTED = "#a8321f"
BORDERLINE = "#d08a1e"
MUTED = "#9aa5b1"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def effect_overview_png(rows: Sequence[dict], *, delta: float, aggregate: str) -> bytes:
    """Every dimension's effect against its index in StyleSpace (conv and toRGB), selected and borderline ones
    marked with their bootstrap intervals (where the rows have them); ``delta``: the threshold line."""
    dims = np.array([row["dim"] for row in rows])
    effects = np.array([row["effect"] for row in rows])
    selected = np.array([row["selected"] for row in rows])
    borderline = np.array([bool(row.get("borderline")) for row in rows]) & ~selected
    lower = np.array([np.nan if row.get("effect_lower") is None else row["effect_lower"] for row in rows])
    upper = np.array([np.nan if row.get("effect_upper") is None else row["effect_upper"] for row in rows])
    torgb = np.array([row["kind"] == "torgb" for row in rows])
    figure, (by_dim, hist) = plt.subplots(1, 2, figsize=(9.5, 3.0), gridspec_kw={"width_ratios": [3, 1]})
    plain = ~selected & ~borderline
    by_dim.scatter(dims[~torgb & plain], effects[~torgb & plain], s=4, color=ACCENT, label="conv")
    by_dim.scatter(dims[torgb & plain], effects[torgb & plain], s=4, color=MUTED, label="toRGB")
    for mask, color, label in ((borderline, BORDERLINE, "borderline"), (selected, SELECTED, "selected")):
        if not mask.any():
            continue
        with_interval = mask & np.isfinite(lower) & np.isfinite(upper)
        if with_interval.any():
            by_dim.errorbar(
                dims[with_interval],
                effects[with_interval],
                yerr=[
                    effects[with_interval] - lower[with_interval],
                    upper[with_interval] - effects[with_interval],
                ],
                fmt="none",
                ecolor=color,
                elinewidth=1.0,
                capsize=2,
            )
        by_dim.scatter(dims[mask], effects[mask], s=18, color=color, label=label)
    by_dim.axhline(delta, color=INK, linewidth=0.8, linestyle="--")
    by_dim.set_xlabel("style dimension")
    by_dim.set_ylabel(f"effect ({aggregate})")
    by_dim.legend(loc="upper right", fontsize=8, frameon=False, markerscale=1.5)
    hist.hist(effects, bins=40, color=ACCENT, orientation="horizontal")
    hist.axhline(delta, color=INK, linewidth=0.8, linestyle="--")
    hist.set_xscale("log")
    hist.set_xlabel("dimensions")
    hist.set_ylim(by_dim.get_ylim())
    hist.tick_params(labelleft=False)
    for axis in (by_dim, hist):
        axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def dimension_distribution_png(*, r_low: np.ndarray, r_high: np.ndarray, delta: float, dim: int) -> bytes:
    """Histogram over images of the score change when one dimension is clamped low and high."""
    figure, axis = plt.subplots(figsize=(5.0, 2.6))
    finite = np.concatenate([r_low[np.isfinite(r_low)], r_high[np.isfinite(r_high)]])
    span = max(float(np.abs(finite).max()) if finite.size else 0.0, delta, 0.05)
    bins = np.linspace(-span, span, 41)
    axis.hist(r_low[np.isfinite(r_low)], bins=bins, color=ACCENT, alpha=0.7, label="clamped low")
    axis.hist(r_high[np.isfinite(r_high)], bins=bins, color=SELECTED, alpha=0.6, label="clamped high")
    for x in (-delta, delta):
        axis.axvline(x, color=INK, linewidth=0.8, linestyle="--")
    axis.set_xlabel(f"change of the classifier score, dimension {dim}")
    axis.set_ylabel("images")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=8, frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)
