"""Projection of real images into StyleSpace (papers/003 Section 2.1, Eq. 1-2).

For each image X we optimise its style vector S directly, starting from the mean style vector, to minimise

    L = L_mse + alpha * L_lpips + beta * L_cls + gamma * L_disc

on pixels of G(S): the mean squared error, a perceptual distance (LPIPS when its backbone is on disk, else a
distance on the classifier's features), a classifier term that keeps the classifier's view of the
reconstruction close to the original's (squared difference of logits), and the non-saturating discriminator loss
softplus(-D(G(S))) that keeps the reconstruction realistic. 500 Adam steps by default, with a short warm-up and a
cosine ramp-down of the learning rate. Noise inputs are fixed (``noise_mode="const"``) so G(S) is deterministic.

Images of one batch are optimised jointly but independently: every loss term is a sum of per-image terms (the
discriminator's minibatch-stddev group is set to 1 for this), so an image's result does not depend on its batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from . import device as devices
from .classifiers.base import classifier_logit
from .device import CompiledOrEager, autocast_for
from .metrics import fidelity
from .metrics.realism import one_image_per_group


@dataclass
class ProjectionConfig:
    steps: int = 500
    lr: float = 0.05
    lr_rampup: float = 0.05  # fraction of steps with linear warm-up
    lr_rampdown: float = 0.25  # fraction of steps with cosine ramp-down to zero
    alpha: float = 10.0  # perceptual weight, measured on the demo phantoms (docs/engine.md)
    beta: float = 0.05  # classifier (squared logit difference)
    gamma: float = 0.01  # discriminator
    batch_size: int = 16
    prefer_lpips: bool = True
    # bf16 autocast of the forward passes on CUDA (the optimised styles, Adam and the loss sums stay float32);
    # off by default: docs/benchmarks.md gives its measured effect on fidelity and speed
    bf16_on_cuda: bool = False


@dataclass
class ProjectionResult:
    """Outcome of ``project_images`` for N images."""

    styles: torch.Tensor  # [N, D] float32
    reconstructions: torch.Tensor  # [N, C, H, W] in [-1, 1]
    mse: torch.Tensor  # [N], [0, 1] scale
    psnr: torch.Tensor  # [N], dB
    ssim: torch.Tensor  # [N]
    perceptual: torch.Tensor  # [N]
    prob_original: torch.Tensor  # [N], classifier probability of the target label on the input
    prob_reconstruction: torch.Tensor  # [N], on G(S)
    perceptual_kind: str
    config: dict = field(default_factory=dict)
    loss_history: list[float] = field(default_factory=list)  # mean total loss per step (first batch)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """Median PSNR / SSIM and the share of images whose probability moved by at most 0.1."""
        return fidelity_summary(self.psnr, self.ssim, self.prob_original, self.prob_reconstruction)

    def per_image(self, i: int) -> dict[str, float]:
        """Fidelity figures of image i as plain floats."""
        return {
            "mse": float(self.mse[i]),
            "psnr": float(self.psnr[i]),
            "ssim": float(self.ssim[i]),
            "perceptual": float(self.perceptual[i]),
            "prob_original": float(self.prob_original[i]),
            "prob_reconstruction": float(self.prob_reconstruction[i]),
            "prob_abs_diff": abs(float(self.prob_original[i]) - float(self.prob_reconstruction[i])),
        }


# The demo's fidelity bar (docs/demo-models.md): median PSNR >= 28 dB or median SSIM >= 0.9, and the
# classifier's probability on the reconstruction within 0.1 of the original's for >= 90 % of the images.
FIDELITY_BAR = {"median_psnr": 28.0, "median_ssim": 0.9, "max_prob_diff": 0.1, "share_within": 0.9}


def fidelity_summary(psnr, ssim, prob_original, prob_reconstruction) -> dict[str, float]:
    """Fidelity of a set of reconstructions against ``FIDELITY_BAR`` (tensors or arrays [N])."""
    psnr, ssim = torch.as_tensor(psnr).float(), torch.as_tensor(ssim).float()
    diff = (torch.as_tensor(prob_original).float() - torch.as_tensor(prob_reconstruction).float()).abs()
    out = {
        "images": int(psnr.numel()),
        "median_psnr": float(psnr.median()),
        "median_ssim": float(ssim.median()),
        "prob_within_0.1": float((diff <= FIDELITY_BAR["max_prob_diff"]).float().mean()),
        "max_prob_diff": float(diff.max()),
    }
    pixels = (
        out["median_psnr"] >= FIDELITY_BAR["median_psnr"] or out["median_ssim"] >= FIDELITY_BAR["median_ssim"]
    )
    out["bar_met"] = bool(pixels and out["prob_within_0.1"] >= FIDELITY_BAR["share_within"])
    return out


def _lr_at(step: int, cfg: ProjectionConfig) -> float:
    t = step / max(cfg.steps, 1)
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if cfg.lr_rampup > 0:
        ramp *= min(1.0, t / cfg.lr_rampup + 1.0 / max(cfg.steps, 1))
    return cfg.lr * ramp


def project_images(
    images: torch.Tensor,
    G,
    *,
    classifier=None,
    D=None,
    init_styles: torch.Tensor | None = None,
    style_scale: torch.Tensor | None = None,
    config: ProjectionConfig | None = None,
    perceptual: fidelity.PerceptualDistance | None = None,
    progress_fn: Callable[[int, int, str], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
    compile_models: bool = False,
) -> ProjectionResult:
    """Project ``images`` [N, C, H, W] in [-1, 1] (the generator's resolution and channels) into StyleSpace.

    ``init_styles``: the starting style vector [D] (the mean S over random samples, ``StyleRanges.mean``); when
    None, the styles of ``G.mapping.w_avg``. ``style_scale`` (optional, [D], positive): optimise
    ``S = init + u * style_scale`` over u instead of S itself, e.g. with the styles' standard deviations
    (``StyleRanges.std``), so that Adam's steps, which are about ``lr`` per coordinate whatever the gradient's size,
    are proportional to each dimension's natural spread; the loss is the same. ``classifier`` (optional): maps
    images to the target probability
    [N]; enables L_cls and the classifier-feature perceptual fallback. ``D`` (optional): enables L_disc.
    Terms whose model is missing are left out. Raises ``InterruptedError`` when ``abort_fn()`` becomes true.
    ``compile_models``: on CUDA, run each step's loss (generator, classifier, perceptual features and
    discriminator, forward and backward) under ``torch.compile`` (compiled once per process, then faster steps;
    the CPU ignores it). The target images' perceptual features are computed once per batch.
    """
    cfg = config or ProjectionConfig()
    n, c, h, w = images.shape
    if (c, h, w) != (G.img_channels, G.img_resolution, G.img_resolution):
        raise ValueError(
            f"images must be [N, {G.img_channels}, {G.img_resolution}, {G.img_resolution}] "
            f"for this generator, got {list(images.shape)}"
        )
    device = next(G.parameters()).device
    G.requires_grad_(False)
    if classifier is not None:
        classifier.requires_grad_(False)
    if D is not None:
        D.requires_grad_(False)
    if init_styles is None:
        with torch.no_grad():
            init_styles = G.styles_from_w(G.mapping.w_avg[None].to(device))[0]
    init_styles = init_styles.to(device).float()
    if style_scale is not None:
        style_scale = style_scale.to(device).float().reshape(-1)
        if style_scale.shape != init_styles.shape or not bool((style_scale > 0).all()):
            raise ValueError(f"style_scale must be {list(init_styles.shape)} and positive")
    if perceptual is None:
        feats = getattr(classifier, "features", None) if classifier is not None else None
        names = getattr(classifier, "feature_layer_names", None)
        if feats is not None and callable(names) and not names():
            feats = None  # the classifier exposes no intermediate layers (e.g. a TorchScript file)
        try:
            perceptual = fidelity.PerceptualDistance(feats, prefer_lpips=cfg.prefer_lpips)
        except ValueError:
            perceptual = None  # no LPIPS backbone and no classifier: the perceptual term is left out
    if perceptual is not None:
        perceptual = perceptual.to(device)

    use_perceptual = perceptual is not None and cfg.alpha > 0

    # The layout read once here: a cached property's lock cannot be traced by the compiler.
    layout = getattr(G, "style_layout", None)
    synthesis = getattr(G, "synthesis", None)

    def synthesize(s):
        if layout is not None and hasattr(synthesis, "forward_styles"):
            return synthesis.forward_styles(layout.split(s), noise_mode="const")
        return G.synthesize_from_styles(s, noise_mode="const")

    def step_loss(s, x, target_logit, x_features):
        """The loss of Eq. 2 per image [N] for styles ``s`` and targets ``x``."""
        y = synthesize(s).float()
        loss = (y - x).square().flatten(1).mean(1)
        if use_perceptual:
            loss = loss + cfg.alpha * perceptual(y, x, x_features).float()
        if target_logit is not None:
            loss = (
                loss
                + cfg.beta * (classifier_logit(classifier, y.clamp(-1, 1)).float() - target_logit).square()
            )
        if D is not None and cfg.gamma > 0:
            loss = loss + cfg.gamma * F.softplus(-D(y).float()).flatten()
        return loss

    loss_fn = (
        CompiledOrEager(step_loss, name="the projection loss")
        if compile_models and devices.compiles_on(device)
        else step_loss
    )
    t0 = time.time()
    out_styles, out_recon, history = [], [], []
    total_steps = cfg.steps * math.ceil(n / cfg.batch_size)
    done_steps = 0
    for start in range(0, n, cfg.batch_size):
        x = images[start : start + cfg.batch_size].to(device).float()
        nb = x.shape[0]
        with torch.no_grad():
            target_logit = (
                classifier_logit(classifier, x) if classifier is not None and cfg.beta > 0 else None
            )
            with autocast_for(device, bf16=cfg.bf16_on_cuda):
                x_features = perceptual.reference(x) if perceptual is not None and use_perceptual else None
        u = torch.zeros(nb, init_styles.numel(), device=device, requires_grad=True)
        scale = style_scale if style_scale is not None else 1.0
        opt = torch.optim.Adam([u], lr=cfg.lr, betas=(0.9, 0.999))
        for step in range(cfg.steps):
            if abort_fn and abort_fn():
                raise InterruptedError("projection was cancelled")
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg)
            s = init_styles + u * scale
            with autocast_for(device, bf16=cfg.bf16_on_cuda), one_image_per_group(D):
                loss = loss_fn(s, x, target_logit, x_features)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            if start == 0:
                history.append(loss.detach().mean())  # a tensor: no device sync every step
            done_steps += 1
            if progress_fn and (step % 10 == 0 or step == cfg.steps - 1):
                progress_fn(
                    done_steps,
                    total_steps,
                    f"images {start + 1}-{start + nb} of {n}, step {step + 1}/{cfg.steps}, "
                    f"loss {float(loss.detach().mean()):.4f}",
                )
        with torch.no_grad():
            s = init_styles + u.detach() * scale
            out_styles.append(s)
            out_recon.append(G.synthesize_from_styles(s, noise_mode="const"))

    styles = torch.cat(out_styles)
    recon = torch.cat(out_recon)
    history = [float(v) for v in history]
    with torch.no_grad():
        x_all = images.to(device).float()
        if perceptual is not None:
            perc = torch.cat([perceptual(recon[i : i + 32], x_all[i : i + 32]) for i in range(0, n, 32)])
        else:
            perc = torch.full([n], float("nan"))
        if classifier is not None:
            p_orig = torch.cat([classifier(x_all[i : i + 32]) for i in range(0, n, 32)])
            p_rec = torch.cat([classifier(recon[i : i + 32].clamp(-1, 1)) for i in range(0, n, 32)])
        else:
            p_orig = p_rec = torch.full([n], float("nan"))
        result = ProjectionResult(
            styles=styles.cpu(),
            reconstructions=recon.cpu(),
            mse=fidelity.mse(recon, x_all).cpu(),
            psnr=fidelity.psnr(recon, x_all).cpu(),
            ssim=fidelity.ssim(recon, x_all).cpu(),
            perceptual=perc.cpu(),
            prob_original=p_orig.cpu(),
            prob_reconstruction=p_rec.cpu(),
            perceptual_kind=perceptual.kind if perceptual is not None else "none",
            config=asdict(cfg),
            loss_history=history,
            seconds=time.time() - t0,
        )
    return result
