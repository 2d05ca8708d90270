"""One entry point for every method: ``generate`` (one image), ``generate_batch`` (several), ``save_result``.

Methods (``METHODS``), each with its config dataclass:

* ``stylespace`` (papers/003, ``StyleSpaceConfig``): needs the generator, and styles or a projection; style
  ranges are estimated when not given.
* ``gci`` (papers/002, ``GCIConfig``): needs the generator, and styles or a projection.
* ``dip`` (papers/000, ``DIPConfig``): needs a classifier with ``loss_estimate`` unless
  ``loss_estimator_weight=0`` (plain DIP).
* ``disc`` (papers/001, ``DISCConfig``): needs named classifier feature layers.
* ``gradcam`` (``SaliencyConfig``): needs a classifier layer with 4-D activations.
* ``integrated_gradients`` (``SaliencyConfig``).
* ``latentshift`` (Cohen et al. 2021, ``LatentShiftConfig``): needs an autoencoder (``autoencoder=AE``).

Options are given as a config object (``config=GCIConfig(...)``) or as keyword arguments (``steps=50``), or
both (keywords override the object's fields); an unknown option raises ``CounterfactualError`` listing the
valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..images import difference_heatmap, to_uint8
from ..metrics.fidelity import default_perceptual, perceptual_kind_of
from .base import (
    AbortFn,
    CounterfactualError,
    CounterfactualResult,
    ProgressFn,
    Reporter,
    as_image_batch,
    module_device,
    resolve_target,
)
from .dip import DIPConfig, run_dip
from .disc import DISCConfig, run_disc
from .evaluation import counterfactual_metrics
from .gci import GCIConfig, run_gci
from .latentshift import LatentShiftConfig, run_latentshift
from .saliency import SaliencyConfig, run_gradcam, run_integrated_gradients
from .stylespace import StyleSpaceConfig, run_stylespace

__all__ = [
    "METHODS",
    "MethodSpec",
    "generate",
    "generate_batch",
    "make_config",
    "save_path_gif",
    "save_result",
]


@dataclass(frozen=True)
class MethodSpec:
    """A method: its config class, its runner and which of the optional models its runner takes."""

    config: type
    run: object
    uses: tuple[str, ...]  # of "generator", "discriminator", "styles", "ranges", "autoencoder"
    needs_generator: bool = False
    needs_autoencoder: bool = False


METHODS: dict[str, MethodSpec] = {
    "stylespace": MethodSpec(
        StyleSpaceConfig,
        run_stylespace,
        ("generator", "discriminator", "styles", "ranges"),
        needs_generator=True,
    ),
    "gci": MethodSpec(
        GCIConfig, run_gci, ("generator", "discriminator", "styles", "ranges"), needs_generator=True
    ),
    "dip": MethodSpec(DIPConfig, run_dip, ()),
    "disc": MethodSpec(DISCConfig, run_disc, ("discriminator",)),
    "gradcam": MethodSpec(SaliencyConfig, run_gradcam, ()),
    "integrated_gradients": MethodSpec(SaliencyConfig, run_integrated_gradients, ()),
    "latentshift": MethodSpec(LatentShiftConfig, run_latentshift, ("autoencoder",), needs_autoencoder=True),
}


def make_config(method: str, config=None, **options):
    """The config object of ``method``: ``config`` (or the defaults) with ``options`` replacing fields.

    Raises ``CounterfactualError`` for an unknown method, a config of another method, or unknown options.
    """
    if method not in METHODS:
        raise CounterfactualError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    cls = METHODS[method].config
    if config is not None and not isinstance(config, cls):
        raise CounterfactualError(f"method {method!r} takes a {cls.__name__}, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise CounterfactualError(
            f"unknown option(s) {unknown} for method {method!r}; valid: {sorted(fields)}"
        )
    try:
        return dataclasses.replace(config, **options) if config is not None else cls(**options)
    except TypeError as exc:
        raise CounterfactualError(f"invalid options for method {method!r}: {exc}") from None


def _masks(masks, n: int, name: str) -> list:
    if masks is None:
        return [None] * n
    if isinstance(masks, np.ndarray | torch.Tensor) and masks.ndim == 2:
        masks = [masks] * n if n == 1 else None
        if masks is None:
            raise CounterfactualError(f"{name} must be one [H, W] mask per image ([N, H, W]) for {n} images")
    if len(masks) != n:
        raise CounterfactualError(f"{name} has {len(masks)} masks for {n} images")
    return list(masks)


def generate_batch(
    images: torch.Tensor,
    *,
    classifier,
    targets: int | str | Sequence[int | str],
    method: str = "gci",
    generator=None,
    discriminator=None,
    styles: torch.Tensor | None = None,
    ranges=None,
    autoencoder=None,
    lung_masks=None,
    opacity_masks=None,
    config=None,
    metrics: bool = True,
    perceptual="default",
    progress_fn: ProgressFn | None = None,
    abort_fn: AbortFn | None = None,
    **options,
) -> list[CounterfactualResult]:
    """Counterfactuals (or saliency maps) for a batch of queries, batched where the method allows (stylespace,
    gci, the saliency methods); dip and disc fit one prior per image.

    Args:
        images: ``[N, C, H, W]`` (or one ``[C, H, W]``) in [-1, 1]; for stylespace and gci the generator's
            resolution and channels.
        classifier: the explained classifier (an ``ImageClassifier``; images -> probability of its label
            ``[N]``). It is put in eval mode with its parameters frozen.
        targets: one target for all images or one per image: 0/1 or a label spelling
        (``base.resolve_target``).
        method: a name of ``METHODS``.
        generator, discriminator: StyleGAN2 networks (stylespace and gci need the generator; the discriminator
            adds the projection's realism term, DISC's discriminator manifold term and the realism metric).
        styles: ``[N, D]`` projected styles of the images (stylespace, gci); projected when None.
        ranges: ``StyleRanges`` of the generator (stylespace clamps to them; gci scales the changed styles).
        autoencoder: an ``ImageAutoencoder`` (latentshift moves its latent code).
        lung_masks, opacity_masks: ``[N, H, W]`` bool (or a list) for the locality metrics; optional.
        config: the method's config object; ``options`` override its fields.
        metrics: compute ``result.metrics`` (``metrics.counterfactual_metrics``).
        perceptual: the perceptual distance of the metrics (see ``counterfactual_metrics``).
        progress_fn: ``progress_fn(done, total, message)``, monotone over the whole call.
        abort_fn: polled between steps; when it returns True, ``InterruptedError`` is raised.

    Returns one ``CounterfactualResult`` per image, in order.

    Raises:
        CounterfactualError: bad input, unknown method or option, a model the method needs is missing.
        InterruptedError: ``abort_fn`` asked to stop.
    """
    spec_cfg = make_config(method, config, **options)
    spec = METHODS[method]
    x = as_image_batch(images, name="images")
    n = x.shape[0]
    label = str(getattr(classifier, "target", "label"))
    if isinstance(targets, int | str):
        targets = [targets] * n
    targets = [resolve_target(t, label) for t in targets]
    if len(targets) != n:
        raise CounterfactualError(f"{len(targets)} targets for {n} images")
    if spec.needs_generator and generator is None:
        raise CounterfactualError(f"method {method!r} needs a generator (generator=G)")
    if spec.needs_autoencoder and autoencoder is None:
        raise CounterfactualError(f"method {method!r} needs an autoencoder (autoencoder=AE)")
    if styles is not None and "styles" not in spec.uses:
        raise CounterfactualError(f"method {method!r} works on pixels and takes no styles")
    lungs, opacities = _masks(lung_masks, n, "lung_masks"), _masks(opacity_masks, n, "opacity_masks")
    if isinstance(classifier, torch.nn.Module):
        classifier.eval().requires_grad_(False)
    for net in (generator, discriminator, autoencoder):
        if isinstance(net, torch.nn.Module):
            net.eval().requires_grad_(False)
    reporter = Reporter(progress_fn, abort_fn, what=f"the {method} counterfactual")
    models = {
        "generator": generator,
        "discriminator": discriminator,
        "styles": styles,
        "ranges": ranges,
        "autoencoder": autoencoder,
    }
    kwargs = {k: models[k] for k in spec.uses}
    run_reporter = reporter.sub(0.0, 0.95 if metrics else 1.0)
    results = spec.run(
        x.to(module_device(classifier)),
        targets,
        classifier=classifier,
        config=spec_cfg,
        reporter=run_reporter,
        **kwargs,
    )
    if metrics:
        if isinstance(perceptual, str) and perceptual == "default":
            perceptual = default_perceptual(classifier)
        for i, r in enumerate(results):
            reporter.check()
            reporter.sub(0.95, 1.0)(i, n, f"metrics {i + 1}/{n}")
            r.metrics = counterfactual_metrics(
                r.query,
                r.counterfactual,
                classifier=classifier,
                target=r.target,
                reference=r.reconstruction,
                heatmap=r.heatmap,
                lung_mask=lungs[i],
                opacity_mask=opacities[i],
                discriminator=discriminator,
                perceptual=perceptual,
                seconds=r.seconds,
            )
            r.parameters["perceptual_kind"] = perceptual_kind_of(perceptual)
    reporter(1, 1, "done")
    return results


def generate(
    image: torch.Tensor,
    *,
    classifier,
    target: int | str,
    method: str = "gci",
    generator=None,
    discriminator=None,
    styles: torch.Tensor | None = None,
    ranges=None,
    autoencoder=None,
    lung_mask=None,
    opacity_mask=None,
    config=None,
    metrics: bool = True,
    perceptual="default",
    progress_fn: ProgressFn | None = None,
    abort_fn: AbortFn | None = None,
    **options,
) -> CounterfactualResult:
    """A counterfactual (or saliency map) of one query ``image`` ``[C, H, W]`` (or ``[1, C, H, W]``) in [-1,
    1] toward ``target``; ``styles`` ``[D]`` or ``[1, D]``, masks ``[H, W]``. See ``generate_batch`` for the
    rest.

    Example::

        res = generate(x, classifier=load_classifier("demo"), target=0, method="gci", generator=G, steps=50)
        res.counterfactual, res.probability, res.metrics["flipped"], res.details["top_changed_styles"]
    """
    x = as_image_batch(image, name="image")
    if x.shape[0] != 1:
        raise CounterfactualError(f"generate takes one image; use generate_batch for {x.shape[0]}")
    return generate_batch(
        x,
        classifier=classifier,
        targets=[target],
        method=method,
        generator=generator,
        discriminator=discriminator,
        styles=None if styles is None else torch.as_tensor(styles).reshape(1, -1),
        ranges=ranges,
        autoencoder=autoencoder,
        lung_masks=None if lung_mask is None else [lung_mask],
        opacity_masks=None if opacity_mask is None else [opacity_mask],
        config=config,
        metrics=metrics,
        perceptual=perceptual,
        progress_fn=progress_fn,
        abort_fn=abort_fn,
        **options,
    )[0]


# ------------------------------------------------------------------------------------------------------------
# Files


def _heat_overlay(image: torch.Tensor, heatmap: torch.Tensor) -> np.ndarray:
    """The grey image with the heatmap as a black-red-yellow-white colour scale blended on top, RGB uint8."""
    grey = to_uint8(image).astype(np.float32) / 255.0
    h = heatmap.detach().float().cpu().numpy().clip(0, 1)
    colour = np.stack([np.clip(3 * h, 0, 1), np.clip(3 * h - 1, 0, 1), np.clip(3 * h - 2, 0, 1)], axis=-1)
    alpha = 0.6 * h[..., None]
    rgb = (1 - alpha) * grey[..., None] + alpha * colour
    return np.round(rgb.clip(0, 1) * 255).astype(np.uint8)


def save_path_gif(
    frames: torch.Tensor,
    path: str | os.PathLike,
    *,
    probabilities: Sequence[float] = (),
    label: str = "",
    frame_ms: int = 150,
    hold_ms: int = 1200,
    scale: int = 2,
) -> Path:
    """A looping GIF of the optimisation path ``frames`` ``[T, C, H, W]`` in [-1, 1], each frame captioned
    with the classifier's probability when given; the last frame is held ``hold_ms``. ``scale``: integer
    upscaling (nearest) so that small images stay readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise CounterfactualError(f"frames must be [T, C, H, W] with T >= 1, got {tuple(frames.shape)}")
    images = []
    for t in range(frames.shape[0]):
        img = Image.fromarray(to_uint8(frames[t])).convert("L")
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        if t < len(probabilities):
            ImageDraw.Draw(img).text((2, 1), f"P({label or 'label'}) {probabilities[t]:.2f}", fill=255)
        images.append(img)
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def save_result(result: CounterfactualResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write a result into ``out_dir``: ``query.png``, ``counterfactual.png``, ``reconstruction.png`` (when
    there is one), ``difference.png`` (counterfactual minus reconstruction-or-query: red = denser, blue =
    darker), ``heatmap.png`` (saliency methods: the heatmap over the query), ``path.gif`` and ``metrics.json``
    (the result's ``summary()``, NaN written as null). Returns ``{name: path}``."""
    from ..images import save_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "query": save_png(result.query, out / "query.png"),
        "counterfactual": save_png(result.counterfactual, out / "counterfactual.png"),
    }
    if result.reconstruction is not None:
        files["reconstruction"] = save_png(result.reconstruction, out / "reconstruction.png")
    if result.heatmap is not None:
        files["heatmap"] = out / "heatmap.png"
        Image.fromarray(_heat_overlay(result.query, result.heatmap)).save(files["heatmap"])
    else:
        base = result.reconstruction if result.reconstruction is not None else result.query
        files["difference"] = out / "difference.png"
        Image.fromarray(difference_heatmap(base, result.counterfactual)).save(files["difference"])
    if result.path is not None:
        files["path"] = save_path_gif(
            result.path, out / "path.gif", probabilities=result.path_probabilities, label=result.label
        )
    files["metrics"] = out / "metrics.json"
    files["metrics"].write_text(json.dumps(_json_safe(result.summary()), indent=1, default=float))
    return files
