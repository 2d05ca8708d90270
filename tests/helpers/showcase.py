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
