"""Saliency baselines: where does the classifier look? Grad-CAM and integrated gradients.

Both explain the evidence for the *target* class: its log-odds ``z`` (target 1) or ``-z`` (target 0), the
pre-sigmoid score, because gradients of a saturated probability vanish. Both return a heatmap ``[H, W]`` in
[0, 1] at the image's resolution; the "counterfactual image" of a saliency result is the query itself, so its
metrics are about localisation (``counterfactuals.metrics``).

* **Grad-CAM** (Selvaraju et al. 2017): activations A_k of a layer (default: the classifier's last named
  feature block), weights alpha_k = the spatial mean of d score / d A_k, map = ReLU(sum_k alpha_k A_k),
  bilinearly up-sampled to the image and divided by its maximum.
* **Integrated gradients** (Sundararajan et al. 2017): attribution = (x - x0) * the mean of d score / d x
  along the straight path from a baseline x0 to x (midpoint rule with ``steps`` points); map = ReLU of the
  channel sum (evidence *for* the target), divided by its maximum. The default baseline is the query blurred
  with a Gaussian of ``blur_sigma`` (H / 16) pixels: it keeps the global intensity and the anatomy's layout
  and removes local structure such as an opacity, whereas a black baseline would read as "all lung" on a
  radiograph.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..params import check, param
from .base import (
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_positive,
    classifier_logit,
    default_layers,
    module_device,
    target_log_odds,
)

__all__ = [
    "BASELINES",
    "SaliencyConfig",
    "gaussian_blur",
    "grad_cam",
    "integrated_gradients",
    "run_gradcam",
    "run_integrated_gradients",
]

BASELINES = ("blur", "black", "mean")


@dataclass
class SaliencyConfig:
    """Settings of the saliency baselines.

    Attributes:
        layer: Grad-CAM's layer; None = the classifier's last named feature layer.
        steps: integrated gradients' path points.
        baseline: integrated gradients' baseline: "blur" (the query blurred), "black" (all -1), "mean" (the
            query's mean intensity everywhere).
        blur_sigma: the blur baseline's Gaussian std in pixels; None = H / 16.
        batch_size: images (Grad-CAM) or path points (integrated gradients) per pass.
    """

    layer: str | None = param(None, optional=True)
    steps: int = param(32, min=1, max=1024)
    baseline: str = param("blur", choices=BASELINES)
    blur_sigma: float | None = param(None, min=0.0, max=1000.0)
    batch_size: int = param(16, min=1, max=256)

    def __post_init__(self):
        check(self, CounterfactualError)
        if self.baseline not in BASELINES:
            raise CounterfactualError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        check_positive(steps=self.steps, batch_size=self.batch_size)
        if self.blur_sigma is not None:
            check_positive(blur_sigma=self.blur_sigma)


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` >= 0 -> divided by each map's maximum (all-zero maps stay zero)."""
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (maps / peak).clamp(0, 1)


def _layer_module(classifier, layer: str) -> torch.nn.Module:
    root = getattr(classifier, "network", classifier)
    modules = dict(root.named_modules()) if isinstance(root, torch.nn.Module) else {}
    if layer not in modules or not layer:
        known = [name for name in modules if name]
        raise CounterfactualError(
            f"the classifier has no layer {layer!r}; available: {', '.join(known[:40])}"
        )
    return modules[layer]


def grad_cam(
    classifier, images: torch.Tensor, targets: torch.Tensor, *, layer: str | None = None
) -> torch.Tensor:
    """Grad-CAM heatmaps ``[N, H, W]`` in [0, 1] for images ``[N, C, H, W]`` in [-1, 1] and targets ``[N]``.

    ``layer``: a module name of ``classifier.network`` (or of the classifier); default the last of the
    classifier's ``default_feature_layers``. The layer's output must be ``[N, K, h, w]``.
    """
    if layer is None:
        names = default_layers(classifier)
        if not names:
            raise CounterfactualError("the classifier names no feature layers; pass the Grad-CAM layer")
        layer = names[-1]
    module = _layer_module(classifier, layer)
    captured = {}

    def hook(mod, args, output):
        captured["a"] = output

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)  # gives the graph a leaf when weights are frozen
            score = target_log_odds(classifier_logit(classifier, x), targets)
            acts = captured.get("a")
            if not isinstance(acts, torch.Tensor) or acts.ndim != 4:
                raise CounterfactualError(
                    f"layer {layer!r} must output [N, K, h, w] activations for Grad-CAM"
                )
            (grads,) = torch.autograd.grad(score.sum(), acts)
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _normalise(F.relu(cam))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[N, C, H, W]`` with std ``sigma`` pixels (reflect padding, 3-sigma
    kernel)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    coords = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def ig_baseline(images: torch.Tensor, kind: str, sigma: float | None = None) -> torch.Tensor:
    """The integrated-gradients baseline for ``images`` ``[N, C, H, W]`` (see ``SaliencyConfig.baseline``)."""
    if kind == "black":
        return torch.full_like(images, -1.0)
    if kind == "mean":
        return images.mean(dim=(1, 2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        return gaussian_blur(images, sigma if sigma is not None else images.shape[-1] / 16)
    raise CounterfactualError(f"baseline must be one of {BASELINES}, got {kind!r}")


def integrated_gradients(
    classifier,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = 32,
    baseline: torch.Tensor | None = None,
    batch_size: int = 16,
    reporter: Reporter | None = None,
) -> torch.Tensor:
    """Integrated-gradients attributions ``[N, C, H, W]`` of the target log-odds (same units), for images
    ``[N, C, H, W]`` in [-1, 1] and targets ``[N]``; ``baseline`` ``[N, C, H, W]`` (default all -1).

    By the completeness property their sum approximates ``score(x) - score(baseline)`` (midpoint rule)."""
    if baseline is None:
        baseline = torch.full_like(images, -1.0)
    alphas = (torch.arange(steps, dtype=images.dtype, device=images.device) + 0.5) / steps
    out = torch.empty_like(images)
    for i in range(images.shape[0]):
        x, x0 = images[i : i + 1], baseline[i : i + 1]
        total = torch.zeros_like(x)
        for start in range(0, steps, batch_size):
            if reporter is not None:
                reporter.check()
            a = alphas[start : start + batch_size].view(-1, 1, 1, 1)
            with torch.enable_grad():
                path = (x0 + a * (x - x0)).detach().requires_grad_(True)
                score = target_log_odds(classifier_logit(classifier, path), targets[i].expand(len(a)))
                (g,) = torch.autograd.grad(score.sum(), path)
            total += g.sum(0, keepdim=True)
        out[i] = ((x - x0) * total / steps)[0]
        if reporter is not None:
            reporter(i + 1, images.shape[0], f"integrated gradients, image {i + 1}/{images.shape[0]}")
    return out


def _results(method: str, images, targets, heatmaps, classifier, cfg, details, seconds) -> list:
    """One attribution result per image: the heatmap, and the query standing in for the counterfactual."""
    with torch.no_grad():
        probs = torch.sigmoid(classifier_logit(classifier, images)).cpu()
    label = str(getattr(classifier, "target", "label"))
    out = []
    for i in range(images.shape[0]):
        p = float(probs[i])
        out.append(
            CounterfactualResult(
                method=method,
                kind="attribution",
                target=int(targets[i]),
                label=label,
                query=images[i].cpu(),
                counterfactual=images[i].cpu(),
                probability=p,
                query_probability=p,
                path=images[i : i + 1].cpu(),
                path_probabilities=[p],
                heatmap=heatmaps[i].cpu(),
                parameters=asdict(cfg),
                details=dict(details),
                seconds=seconds,
            )
        )
    return out


def run_gradcam(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    config: SaliencyConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Grad-CAM results (heatmap set, counterfactual = query) for ``images`` ``[N, C, H, W]`` in [-1, 1]."""
    cfg = config or SaliencyConfig()
    reporter = reporter or Reporter(what="gradcam")
    t0 = time.time()
    device = module_device(classifier)
    x = images.to(device)
    tg = torch.as_tensor(list(targets), dtype=torch.long, device=device)
    layer = cfg.layer or (default_layers(classifier) or [None])[-1]
    maps = []
    for start in range(0, x.shape[0], cfg.batch_size):
        reporter.check()
        maps.append(
            grad_cam(
                classifier, x[start : start + cfg.batch_size], tg[start : start + cfg.batch_size], layer=layer
            )
        )
        reporter(start + len(maps[-1]), x.shape[0], "grad-cam")
    seconds = (time.time() - t0) / x.shape[0]
    return _results("gradcam", x, tg, torch.cat(maps), classifier, cfg, {"layer": layer}, seconds)


def run_integrated_gradients(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    config: SaliencyConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Integrated-gradients results (heatmap set, counterfactual = query) for ``images`` ``[N, C, H, W]``."""
    cfg = config or SaliencyConfig()
    reporter = reporter or Reporter(what="integrated gradients")
    t0 = time.time()
    device = module_device(classifier)
    x = images.to(device)
    tg = torch.as_tensor(list(targets), dtype=torch.long, device=device)
    baseline = ig_baseline(x, cfg.baseline, cfg.blur_sigma)
    attributions = integrated_gradients(
        classifier, x, tg, steps=cfg.steps, baseline=baseline, batch_size=cfg.batch_size, reporter=reporter
    )
    with torch.no_grad():
        gap = target_log_odds(classifier_logit(classifier, x) - classifier_logit(classifier, baseline), tg)
    heatmaps = _normalise(F.relu(attributions.sum(1)))
    seconds = (time.time() - t0) / x.shape[0]
    details = {
        "baseline": cfg.baseline,
        "blur_sigma": cfg.blur_sigma if cfg.blur_sigma is not None else x.shape[-1] / 16,
    }
    results = _results("integrated_gradients", x, tg, heatmaps, classifier, cfg, details, seconds)
    for i, r in enumerate(results):
        # completeness: the attributions should sum to the score gap; the difference is the integration error
        r.details = {**details, "score_gap": float(gap[i]), "attribution_sum": float(attributions[i].sum())}
    return results
