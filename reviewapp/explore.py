"""Explore mode: move style dimensions of a projected case and regenerate the image and its probability.

Rendering runs in the web process (one generator pass and one classifier pass, a few tens of milliseconds for
the demo model on a CPU); the models are loaded once per process by the engine bridge's cache.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explain_engine.classifiers import predict_probabilities
from explain_engine.images import to_uint8
from reviewapp.models import Projection, Study
from reviewapp.services import engine_bridge

#: Sliders reach this far beyond the observed range of a dimension, in multiples of that range.
SLIDER_MARGIN = 0.5
MAX_CHANGES = 64


_render_lock = threading.Lock()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Render with one intra-op thread, one render at a time per process. For one small image, more threads
    only spin against the workers and other requests on the same cores: on a busy 2-core machine the demo
    model takes ~0.1 s with one thread and seconds with two."""
    with _render_lock:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


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


@dataclass(frozen=True)
class Frame:
    png: bytes
    probability: float
    milliseconds: float


def projection_styles(projection: Projection) -> torch.Tensor:
    """The case's projected style vector, [1, D] float32."""
    styles = np.load(engine_bridge.media_path(projection.styles_file.name), allow_pickle=False)
    return torch.from_numpy(np.asarray(styles, dtype=np.float32).reshape(1, -1))


def sliders(*, study: Study, projection: Projection, dims: list[int]) -> list[Slider]:
    """One slider per dimension: its observed range over generator samples (the sweep's clamp values) and the
    case's current value."""
    models = engine_bridge.load_study_models(study, ranges=True)
    styles = projection_styles(projection)[0]
    low, high = (t.float() for t in models.ranges.clamp_values("minmax"))
    result = []
    for dim in dims:
        if not 0 <= dim < styles.numel():
            continue
        layer, channel = models.G.style_layout.locate(dim)
        lo, hi, value = float(low[dim]), float(high[dim]), float(styles[dim])
        margin = SLIDER_MARGIN * max(hi - lo, 1e-3)
        result.append(
            Slider(
                dim=dim,
                layer=layer.name,
                channel=channel,
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
    started = time.perf_counter()
    models = engine_bridge.load_study_models(study, ranges=False)
    styles = projection_styles(projection)
    if styles.shape[1] != models.G.style_layout.dims:
        raise ExploreError("The case's style vector does not fit the study's generator.")
    for dim, value in changes.items():
        styles[0, dim] = value
    with _one_thread(), torch.no_grad():
        image = models.G.synthesize_from_styles(styles, noise_mode="const").clamp(-1, 1)
        probability = float(predict_probabilities(models.classifier, image)[0])
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image[0])).save(buffer, format="PNG")
    return Frame(
        png=buffer.getvalue(), probability=probability, milliseconds=1000 * (time.perf_counter() - started)
    )
