"""Rendering: counterfactual images of a clamped dimension, difference maps, flicker GIFs, captioned stacks,
a dimension's summary, and explore mode's frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from explain_engine import images as engine_images
from explain_engine.classifiers import predict_probabilities
from reviewapp import plots
from reviewapp.bridge.cases import stored_case_image
from reviewapp.bridge.files import media_path, png_bytes, write_media
from reviewapp.bridge.models import StudyModelError, load_study_models
from reviewapp.bridge.projection import load_styles
from reviewapp.bridge.sweeps import dimension_changes, sweep_folder

#: Review images are shown at least this large; the GIF's labels need the room.
DISPLAY_MIN_SIZE = 256


def _display(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] scaled up (bilinear) to at least DISPLAY_MIN_SIZE for GIFs and stacks."""
    size = images.shape[-1]
    if size >= DISPLAY_MIN_SIZE:
        return images
    return torch.nn.functional.interpolate(
        images, size=(DISPLAY_MIN_SIZE, DISPLAY_MIN_SIZE), mode="bilinear", align_corners=False
    )


def _perturb(sweep, dim: int, direction: str, projections: Sequence):
    """(clamp value, reconstructions, perturbed images, their probabilities) for one dimension clamped."""
    models = load_study_models(sweep.study)
    low, high = models.ranges.clamp_values("minmax")
    clamp = float((low if direction == "low" else high)[dim])
    # The generator is called directly here, so its input goes to the generator's device; results come back.
    styles = load_styles(projections).to(models.device)
    perturbed_styles = styles.clone()
    perturbed_styles[:, dim] = clamp
    with torch.no_grad():
        recon = models.G.synthesize_from_styles(styles, noise_mode="const").clamp(-1, 1).cpu()
        perturbed = models.G.synthesize_from_styles(perturbed_styles, noise_mode="const").clamp(-1, 1).cpu()
        prob_recon = predict_probabilities(models.classifier, recon)
        prob_pert = predict_probabilities(models.classifier, perturbed)
    return clamp, recon, perturbed, prob_recon, prob_pert


def render_counterfactuals(
    sweep, dimension, projections: Sequence, *, direction: str
) -> list[dict[str, Any]]:
    """Clamp ``dimension`` in ``direction`` on each projection and write the perturbed image, the signed
    difference heatmap, the flicker GIF and the stack (original | reconstruction | perturbed, with the
    classifier's probability on each). Returns the field values of each Counterfactual row."""
    clamp, recon, perturbed, prob_recon, prob_pert = _perturb(sweep, dimension.dim, direction, projections)
    base = f"{sweep_folder(sweep)}/counterfactuals/{dimension.dim}-{direction}"
    rows = []
    for i, projection in enumerate(projections):
        stem = f"{base}-{projection.pk}"
        p_rec, p_pert = float(prob_recon[i]), float(prob_pert[i])
        perturbed_name = write_media(f"{stem}-perturbed.png", png_bytes(engine_images.to_uint8(perturbed[i])))
        difference_name = write_media(
            f"{stem}-difference.png", png_bytes(engine_images.difference_heatmap(recon[i], perturbed[i]))
        )
        gif_name, stack_name = f"{stem}-flicker.gif", f"{stem}-stack.png"
        write_flicker_and_stack(
            gif_name=gif_name,
            stack_name=stack_name,
            original=stored_case_image(projection.case),
            p_original=projection.prob_original,
            unmodified=recon[i],
            p_unmodified=p_rec,
            perturbed=perturbed[i],
            p_perturbed=p_pert,
        )
        rows.append(
            {
                "projection": projection,
                "dimension": dimension,
                "direction": direction,
                "clamp_value": clamp,
                "prob_reconstruction": p_rec,
                "prob_perturbed": p_pert,
                "perturbed_image": perturbed_name,
                "difference_image": difference_name,
                "flicker_gif": gif_name,
                "stack_image": stack_name,
            }
        )
    return rows


def write_flicker_and_stack(
    *,
    gif_name: str,
    stack_name: str,
    original: np.ndarray,
    p_original: float | None,
    unmodified: torch.Tensor,
    p_unmodified: float | None,
    perturbed: torch.Tensor,
    p_perturbed: float | None,
    unmodified_label: str | None = "reconstruction",
) -> None:
    """Write the flicker GIF of ``perturbed`` over ``unmodified`` (images [C, H, W] in [-1, 1], shown at
    display size with the classifier's probability on each frame) and the stack original | unmodified |
    perturbed (``original`` uint8 [H, W]); without ``unmodified_label`` the stack leaves the unmodified
    image out (it is the original). Names are relative to MEDIA_ROOT."""
    big = _display(torch.stack([unmodified, perturbed]))
    engine_images.save_flicker_gif(
        big[0],
        big[1],
        media_path(gif_name),
        labels=(f"unmodified p={_or_nan(p_unmodified):.2f}", f"perturbed p={_or_nan(p_perturbed):.2f}"),
    )
    panels = [(original, "original", p_original)]
    if unmodified_label:
        panels.append((engine_images.to_uint8(big[0]), unmodified_label, p_unmodified))
    panels.append((engine_images.to_uint8(big[1]), "perturbed", p_perturbed))
    write_media(stack_name, png_bytes(stack_image(panels)))


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def render_dimension_summary(sweep, dimension, projections: Sequence) -> dict[str, str]:
    """Write the dimension's mean signed difference map over ``projections`` (where in the chest it acts)
    and the distribution of its effect over all images; returns the DimensionEffect fields."""
    _, recon, perturbed, _, _ = _perturb(sweep, dimension.dim, dimension.direction, projections)
    mean = (perturbed - recon).mean(0)
    base = f"{sweep_folder(sweep)}/dims/{dimension.dim}"
    mean_name = write_media(
        f"{base}-mean-difference.png",
        png_bytes(engine_images.difference_heatmap(torch.zeros_like(mean), mean)),
    )
    r_low = dimension_changes(sweep, dimension.dim, "low")
    r_high = dimension_changes(sweep, dimension.dim, "high")
    plot_name = write_media(
        f"{base}-distribution.png",
        plots.dimension_distribution_png(r_low=r_low, r_high=r_high, delta=sweep.delta, dim=dimension.dim),
    )
    return {"mean_difference": mean_name, "distribution_plot": plot_name}


def stack_image(panels: Sequence[tuple[np.ndarray, str, float | None]]) -> np.ndarray:
    """Greyscale panels side by side, each captioned with its name and the classifier's probability."""
    size = max(DISPLAY_MIN_SIZE, max(panel.shape[0] for panel, _, _ in panels))
    caption, gap = 22, 6
    width = len(panels) * size + (len(panels) - 1) * gap
    canvas = Image.new("L", (width, size + caption), color=255)
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, name, probability) in enumerate(panels):
        tile = Image.fromarray(pixels).convert("L").resize((size, size), Image.Resampling.BILINEAR)
        x = i * (size + gap)
        canvas.paste(tile, (x, 0))
        text = name if probability is None else f"{name}   p = {probability:.2f}"
        draw.text((x + 4, size + 5), text, fill=0)
    return np.asarray(canvas)


# ----------------------------------------------------------------------------------------------------
# Explore mode

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


@dataclass(frozen=True)
class DimensionRange:
    """Where a style dimension sits in the generator and its observed range over generator samples."""

    dim: int
    layer: str
    channel: int
    low: float
    high: float


def dimension_ranges(study, dims: Sequence[int]) -> list[DimensionRange]:
    """The observed range (the sweep's clamp values) of each of ``dims`` that exists in StyleSpace."""
    models = load_study_models(study, ranges=True)
    low, high = (t.float().cpu() for t in models.ranges.clamp_values("minmax"))
    result = []
    for dim in dims:
        if not 0 <= dim < models.G.style_layout.dims:
            continue
        layer, channel = models.G.style_layout.locate(dim)
        result.append(
            DimensionRange(
                dim=dim, layer=layer.name, channel=channel, low=float(low[dim]), high=float(high[dim])
            )
        )
    return result


@dataclass(frozen=True)
class ExploreFrame:
    png: bytes
    probability: float
    milliseconds: float


def render_styles(study, styles: np.ndarray, changes: dict[int, float]) -> ExploreFrame:
    """The image of the style vector ``styles`` [D] with ``changes`` (dimension -> value) applied, as a PNG,
    and the classifier's probability of the target on it. Raises ``StudyModelError`` when the vector does
    not fit the study's generator."""
    started = time.perf_counter()
    models = load_study_models(study, ranges=False)
    vector = torch.from_numpy(np.asarray(styles, dtype=np.float32).reshape(1, -1).copy())
    if vector.shape[1] != models.G.style_layout.dims:
        raise StudyModelError("The case's style vector does not fit the study's generator.")
    for dim, value in changes.items():
        vector[0, dim] = value
    with _one_thread(), torch.no_grad():
        image = models.G.synthesize_from_styles(vector.to(models.device), noise_mode="const").clamp(-1, 1)
        probability = float(predict_probabilities(models.classifier, image)[0])
    return ExploreFrame(
        png=png_bytes(engine_images.to_uint8(image[0])),
        probability=probability,
        milliseconds=1000 * (time.perf_counter() - started),
    )
