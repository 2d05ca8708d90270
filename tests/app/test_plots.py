"""The sweep's effect plot: a PNG with the selected and borderline dimensions marked with their intervals."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from reviewapp import plots


def rows(n=60, *, intervals=True):
    found = []
    for dim in range(n):
        effect = 0.5 - dim * 0.008
        found.append(
            {
                "dim": dim,
                "effect": effect,
                "selected": dim < 3,
                "borderline": 3 <= dim < 6,
                "kind": "torgb" if dim % 2 else "conv",
                "effect_lower": effect - 0.05 if intervals else None,
                "effect_upper": effect + 0.05 if intervals else None,
            }
        )
    return found


def colour_share(png: bytes, hex_colour: str) -> float:
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(image - target).sum(1) < 30).mean())


def test_the_effect_plot_marks_borderline_dimensions_and_their_intervals():
    with_intervals = plots.effect_overview_png(rows(), delta=0.45, aggregate="Mean |change|")
    assert with_intervals.startswith(b"\x89PNG")
    assert colour_share(with_intervals, plots.BORDERLINE) > 0
    assert colour_share(with_intervals, plots.SELECTED) > 0
    # Without intervals (a sweep selected without resampling) the points are drawn alone: less red and orange ink.
    without = plots.effect_overview_png(rows(intervals=False), delta=0.45, aggregate="Mean |change|")
    assert colour_share(without, plots.BORDERLINE) < colour_share(with_intervals, plots.BORDERLINE)
    no_borderline = [dict(row, borderline=False) for row in rows()]
    assert (
        colour_share(plots.effect_overview_png(no_borderline, delta=0.45, aggregate="x"), plots.BORDERLINE)
        == 0
    )
