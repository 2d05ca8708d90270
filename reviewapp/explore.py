"""Explore mode: move style dimensions of a projected case and regenerate the image and its probability.

Rendering runs in the web process (one generator pass and one classifier pass, a few tens of milliseconds for
the demo model on a CPU); the models are loaded once per process by the bridge's model cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reviewapp.bridge.models import StudyModelError
from reviewapp.bridge.projection import projection_styles
from reviewapp.bridge.rendering import ExploreFrame, dimension_ranges, render_styles
from reviewapp.models import Projection, Study

#: Sliders reach this far beyond the observed range of a dimension, in multiples of that range.
SLIDER_MARGIN = 0.5
MAX_CHANGES = 64

Frame = ExploreFrame


class ExploreError(ValueError):
    """Input explore mode cannot render: a message for the user."""


@dataclass(frozen=True)
class Slider:
    dim: int
    layer: str
    channel: int
    low: float
    high: float
    value: float
    minimum: float
    maximum: float


def sliders(*, study: Study, projection: Projection, dims: list[int]) -> list[Slider]:
    """One slider per dimension: its observed range over generator samples (the sweep's clamp values) and the
    case's current value."""
    styles = projection_styles(projection)
    result = []
    for span in dimension_ranges(study, [dim for dim in dims if 0 <= dim < styles.size]):
        lo, hi, value = span.low, span.high, float(styles[span.dim])
        margin = SLIDER_MARGIN * max(hi - lo, 1e-3)
        result.append(
            Slider(
                dim=span.dim,
                layer=span.layer,
                channel=span.channel,
                low=lo,
                high=hi,
                value=value,
                minimum=min(lo - margin, value),
                maximum=max(hi + margin, value),
            )
        )
    return result


def parse_changes(values: list[str], *, style_dims: int) -> dict[int, float]:
    """``["1980:2.5", ...]`` -> {1980: 2.5}; raises ExploreError with a message for anything else."""
    if len(values) > MAX_CHANGES:
        raise ExploreError(f"At most {MAX_CHANGES} dimensions can be changed at once.")
    changes = {}
    for text in values:
        dim_text, _, value_text = text.partition(":")
        try:
            dim, value = int(dim_text), float(value_text)
        except ValueError:
            raise ExploreError(f"Expected DIMENSION:VALUE, got {text!r}.") from None
        if not 0 <= dim < style_dims:
            raise ExploreError(f"Dimension {dim} is outside StyleSpace (0 to {style_dims - 1}).")
        if not math.isfinite(value) or abs(value) > 1e4:
            raise ExploreError(f"Value {value_text!r} for dimension {dim} is out of range.")
        changes[dim] = value
    return changes


def render(*, study: Study, projection: Projection, changes: dict[int, float]) -> Frame:
    """The case regenerated with ``changes`` (dimension -> value) applied to its style vector, as a PNG, and
    the classifier's probability of the target on it."""
    try:
        return render_styles(study, projection_styles(projection), changes)
    except StudyModelError as error:
        raise ExploreError(str(error)) from None
