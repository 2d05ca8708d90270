"""A review set with lifelike images, for the screenshots of docs/reviewer-guide.md.

Cases are chest radiograph phantoms (explain_engine.demo.phantoms). Each "dimension" is a change rendered into the
same phantom: an opacity at the right heart border (pneumonia-like) or a brighter exposure (a shortcut-like,
global change). Reconstructions are slightly smoothed copies, as a GAN's are.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFilter

from explain_engine.demo.phantoms import make_phantom
from explain_engine.images import difference_heatmap, save_flicker_gif
from reviewapp.models import ReviewSet
from tests.factories import (
    CaseFactory,
    CounterfactualFactory,
    DimensionEffectFactory,
    ProjectionFactory,
    ReviewAssignmentFactory,
    ReviewItemFactory,
    ReviewSetFactory,
)

SIZE = 256
CHANGES = [
    # (dimension, layer, direction, phantom overrides, probability after the change)
    (1980, "b32.conv1", "high", {"label": 1, "opacity_zone": "right_middle", "opacity_size": 0.16,
                                 "opacity_density": 0.55}, 0.81),
    (2743, "b64.torgb", "low", {"exposure": 0.82}, 0.64),
]  # fmt: skip


def _png(pixels: np.ndarray) -> ContentFile:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="image.png")


def _smooth(image: np.ndarray) -> np.ndarray:
    pil = Image.fromarray(np.round(image * 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(0.9)))


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0)[None]


def _gif(a: np.ndarray, b: np.ndarray, labels: tuple[str, str], tmp) -> ContentFile:
    path = save_flicker_gif(_tensor(a), _tensor(b), tmp / "flicker.gif", labels=labels)
    return ContentFile(path.read_bytes(), name="flicker.gif")


def _stack(panels: list[tuple[np.ndarray, str]]) -> ContentFile:
    gap, caption = 6, 22
    canvas = Image.new("L", (3 * SIZE + 2 * gap, SIZE + caption), color=0)
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, text) in enumerate(panels):
        canvas.paste(Image.fromarray(pixels), (i * (SIZE + gap), caption))
        draw.text((i * (SIZE + gap) + 4, 5), text, fill=230)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="stack.png")


def showcase_review_set(*, readers, tmp_path, images_per_dimension: int = 3, **options) -> ReviewSet:
    review_set = ReviewSetFactory(
        name="Demo study: pneumonia classifier", images_per_dimension=images_per_dimension, **options
    )
    study = review_set.study
    position = 0
    for rank, (dim, layer, direction, overrides, p_perturbed) in enumerate(CHANGES, start=1):
        dimension = DimensionEffectFactory(
            sweep=review_set.sweep, dim=dim, layer=layer, rank=rank, direction=direction, resolution=SIZE
        )
        for k in range(images_per_dimension):
            index = 10 * rank + k
            original = make_phantom(11, index=index, size=SIZE, label=0)
            perturbed = make_phantom(11, index=index, size=SIZE, **overrides)
            original_px = np.round(original.image * 255).astype(np.uint8)
            recon_px, perturbed_px = _smooth(original.image), _smooth(perturbed.image)
            p_original, p_recon = 0.07 + 0.01 * k, 0.09 + 0.01 * k
            p_pert = p_perturbed - 0.04 * k
            # The source is a 16-bit PNG, as an imported 16-bit film keeps: window/level works on its values.
            source = _png(np.round(original.image * 65535).astype(np.uint16))
            source.name = "source.png"
            case = CaseFactory(
                study=study, image=_png(original_px), source_file=source, width=SIZE, height=SIZE, label=0
            )
            projection = ProjectionFactory(
                case=case,
                reconstruction=_png(recon_px),
                prob_original=p_original,
                prob_reconstruction=p_recon,
            )
            counterfactual = CounterfactualFactory(
                dimension=dimension,
                projection=projection,
                direction=direction,
                prob_reconstruction=p_recon,
                prob_perturbed=p_pert,
                perturbed_image=_png(perturbed_px),
                difference_image=_png(difference_heatmap(_tensor(recon_px), _tensor(perturbed_px))),
                flicker_gif=_gif(
                    recon_px,
                    perturbed_px,
                    (f"unmodified p={p_recon:.2f}", f"perturbed p={p_pert:.2f}"),
                    tmp_path,
                ),
                stack_image=_stack(
                    [
                        (original_px, f"original  p = {p_original:.2f}"),
                        (recon_px, f"reconstruction  p = {p_recon:.2f}"),
                        (perturbed_px, f"perturbed  p = {p_pert:.2f}"),
                    ]
                ),
            )
            position += 1
            ReviewItemFactory(
                review_set=review_set,
                counterfactual=counterfactual,
                position=position,
                rank_in_dimension=k + 1,
            )
    for reader in readers:
        ReviewAssignmentFactory(review_set=review_set, reader=reader)
    return review_set


def _heatmap_over(pixels: np.ndarray, centres: list[tuple[float, float]], spread: float) -> ContentFile:
    """A saliency heatmap in red over a grey film: Gaussian blobs at ``centres`` (x, y as fractions of the side)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    heat = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * spread**2)) for x, y in centres)
    heat = np.clip(heat, 0, 1)
    grey = pixels.astype(np.float32)
    rgb = np.stack(
        [grey * (1 - 0.6 * heat) + 255 * 0.6 * heat, grey * (1 - 0.6 * heat), grey * (1 - 0.6 * heat)]
    )
    return _png(np.clip(np.round(rgb.transpose(1, 2, 0)), 0, 255).astype(np.uint8))


def showcase_lab_runs(*, review_set: ReviewSet, tmp_path) -> list:
    """Four finished lab runs on the first case of ``review_set`` (from :func:`showcase_review_set`): GCI, DISC and
    the deep image prior move it toward pneumonia by an opacity at the right heart border;
    Grad-CAM, toward the classifier's decision (no pneumonia), points at the clear lung fields.

    The figures are illustrative, chosen to look like such runs; the images are the phantom's.
    """
    from tests.factories import LabRunFactory

    item = review_set.items.order_by("rank_in_dimension", "counterfactual__dimension__rank").first()
    case = item.counterfactual.projection.case
    original = make_phantom(11, index=10, size=SIZE, label=0)
    original_px = np.round(original.image * 255).astype(np.uint8)
    runs = []
    # (method, density of the opacity the run adds, its start point is a pre-image, p(start), p(result), figures)
    for method, density, pre_image, p_start, p_result, figures in [
        (
            "gci",
            0.30,
            False,
            0.09,
            0.52,
            {
                "l1": 0.012,
                "ssim": 0.95,
                "perceptual": 0.11,
                "cout": 0.61,
                "mass_in_lung": 0.83,
                "discriminator_logit": 2.1,
                "loss_estimate": 0.9,
            },
        ),
        (
            "disc",
            0.55,
            False,
            0.09,
            0.88,
            {
                "l1": 0.021,
                "ssim": 0.93,
                "perceptual": 0.17,
                "cout": 0.74,
                "mass_in_lung": 0.88,
                "discriminator_logit": 1.7,
                "loss_estimate": 0.7,
            },
        ),
        (
            "dip",
            0.45,
            True,
            0.22,
            0.81,
            {
                "l1": 0.034,
                "ssim": 0.84,
                "perceptual": 0.29,
                "cout": 0.58,
                "mass_in_lung": 0.71,
                "discriminator_logit": -0.6,
                "loss_estimate": 0.5,
            },
        ),
    ]:
        start = (
            _smooth(original.image)
            if not pre_image
            else _smooth(
                np.clip(original.image + np.random.default_rng(3).normal(0, 0.04, original.image.shape), 0, 1)
            )
        )
        changed = make_phantom(
            11,
            index=10,
            size=SIZE,
            label=1,
            opacity_zone="right_middle",
            opacity_size=0.16,
            opacity_density=density,
        )
        result = _smooth(changed.image)
        runs.append(
            LabRunFactory(
                study=review_set.study,
                case=case,
                method=method,
                target=1,
                prob_original=0.07,
                prob_start=p_start,
                prob_counterfactual=p_result,
                flipped=p_result > 0.5,
                start_image=_png(start),
                counterfactual_image=_png(result),
                difference_image=_png(difference_heatmap(_tensor(start), _tensor(result))),
                path_gif=_gif(
                    start, result, (f"start p={p_start:.2f}", f"result p={p_result:.2f}"), tmp_path
                ),
                metrics={
                    **figures,
                    "reached_target": float(p_result > 0.5),
                    "flipped": float(p_result > 0.5),
                    "changed_fraction": round(figures["l1"] * 5, 3),
                },
                seconds={"gci": 16.4, "disc": 3.8, "dip": 27.9}[method],
            )
        )
    runs.append(
        LabRunFactory(
            study=review_set.study,
            case=case,
            method="gradcam",
            target=0,
            prob_original=0.07,
            prob_start=None,
            prob_counterfactual=0.07,
            flipped=None,
            start_image="",
            counterfactual_image="",
            difference_image="",
            path_gif="",
            flicker_gif="",
            stack_image="",
            heatmap_image=_heatmap_over(original_px, [(0.33, 0.48), (0.67, 0.48)], 0.09),
            metrics={"mass_in_lung": 0.78},
            seconds=0.4,
        )
    )
    return runs
