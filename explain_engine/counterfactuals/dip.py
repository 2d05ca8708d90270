"""Deep image prior counterfactuals regularised by the classifier's loss estimator (papers/000).

A deep image prior f_theta (``priors.DeepImagePriorUNet``: 4 down / 4 up levels, skip connections, bilinear
up-sampling, a fixed noise input) is fitted, weights only, in two stages (after an optional warm-up, below):

1. pre-image recovery (papers/000 Eq. 4): the image whose features at one classifier layer F_l (the first
   block by default, as in the paper) match the query's,

       min_theta  d(F_l(f_theta(z)), F_l(x)) + beta * |l_hat(f_theta(z)) - l_target|

2. counterfactual (Eq. 5), warm-started from stage 1: the same plus the conditional entropy of the target
   class c' under the classifier,

       min_theta  d(F_l(f_theta(z)), F_l(x)) + alpha * H(c' | f_theta(z)) + beta * |l_hat(f_theta(z)) -
       l_target|

with alpha = 0.02 and beta = 0.1 (the paper's weights). ``l_hat`` is the loss-estimator head trained with the
classifier (any classifier with ``loss_estimate``); its scale is arbitrary (it is trained to rank losses), so
``l_target`` defaults to the estimator's value on the query itself: "as typical for the classifier as the
query". Pass ``loss_target`` to ask for another level (e.g. a low percentile over validation images).

``d`` is the relative squared distance ``||a - b||^2 / ||b||^2`` (``base.feature_distance``): the paper's L2
on features, made scale-free so that alpha and beta mean the same for any layer. H(c' | x) is the
cross-entropy -log P(c' | x) of the target class.

With ``loss_estimator_weight=0`` this is plain DIP inversion, the baseline the paper compares against, which
without the estimator's pull tends to leave the classifier's comfort zone (adversarial-looking edits).

Warm-up (``pixel_warmup_steps``, default 200): the paper fits 5000 iterations from the noise input on a GPU.
On a CPU that is out of reach, and classifiers with per-image normalisation (the demo classifier's GroupNorm)
have early features that barely depend on the image's overall brightness and contrast, so a pre-image from
features alone comes out with arbitrary intensity. The prior is therefore first fitted to the query's pixels
(mean squared error), and stage 1 refines that image into the classifier's view of the query. Set
``pixel_warmup_steps=0`` for the paper's start from noise. The other step counts are also smaller than the
paper's for CPU use. Every stage starts with a fresh Adam state and (after a warm-up) a learning-rate ramp
(``lr_rampup_steps``), so that a stage starts where the previous one ended instead of jumping away from it.

On the paper's alpha = 0.02: it is the default, but how far it moves the classifier depends on the classifier
(see docs/generators.md); ``entropy_weight`` sets it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..metrics import fidelity
from ..params import check, param
from .base import (
    ClassifierProbe,
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_non_negative,
    check_positive,
    evenly_spaced_steps,
    feature_distance,
    first_block_layer,
    module_device,
    set_ramped_lr,
    stack_frames,
    target_cross_entropy,
)
from .priors import DeepImagePriorUNet

__all__ = ["DIPConfig", "run_dip"]


@dataclass
class DIPConfig:
    """Settings of deep image prior counterfactuals.

    Attributes:
        layer: the classifier layer whose features are inverted; None = the first block.
        pixel_warmup_steps: Adam steps fitting the prior to the query's pixels first (0 = start from noise).
        preimage_steps: Adam steps of stage 1 (pre-image recovery).
        counterfactual_steps: Adam steps of stage 2 (counterfactual).
        lr: Adam learning rate on the prior's weights (0.01 as the reference DIP).
        lr_rampup_steps: the learning rate ramps up linearly over this many steps at the start of the
            pre-image stage (after a warm-up) and of the counterfactual stage (``base.set_ramped_lr``).
        entropy_weight: alpha, the weight of the conditional-entropy term (0.02 as papers/000).
        loss_estimator_weight: beta, the weight of |l_hat - l_target| (0.1 as papers/000); 0 = plain DIP.
        loss_target: l_target; None = the loss estimate of the query.
        channels, skip_channels, input_channels, noise_scale: the U-Net (see ``DeepImagePriorUNet``).
        path_frames: frames of stage 2 kept for the path (the pre-image first).
        seed: seed of the prior's weights and noise input.
    """

    layer: str | None = param(None, optional=True)
    pixel_warmup_steps: int = param(200, min=0, max=10_000)
    preimage_steps: int = param(200, min=0, max=10_000)
    counterfactual_steps: int = param(500, min=1, max=10_000)
    lr: float = param(0.01, min=0.0, max=10.0)
    lr_rampup_steps: int = param(50, min=0, max=10_000)
    entropy_weight: float = param(0.02, min=0.0, max=1000.0)
    loss_estimator_weight: float = param(0.1, min=0.0, max=1000.0)
    loss_target: float | None = param(None, min=-1e6, max=1e6)
    channels: tuple[int, ...] = param((16, 32, 64, 64), min=1, max=512, max_length=8)
    skip_channels: int = param(4, min=0, max=512)
    input_channels: int = param(32, min=1, max=512)
    noise_scale: float = param(0.1, min=0.0, max=100.0)
    path_frames: int = param(16, min=1, max=200)
    seed: int = param(0, min=0, max=2**31 - 1)

    def __post_init__(self):
        check(self, CounterfactualError)
        self.channels = tuple(int(c) for c in self.channels)
        check_positive(
            lr=self.lr, path_frames=self.path_frames, counterfactual_steps=self.counterfactual_steps
        )
        check_non_negative(
            pixel_warmup_steps=self.pixel_warmup_steps,
            lr_rampup_steps=self.lr_rampup_steps,
            preimage_steps=self.preimage_steps,
            entropy_weight=self.entropy_weight,
            loss_estimator_weight=self.loss_estimator_weight,
        )

    @property
    def variant(self) -> str:
        """The variant's name: "dip" with the loss-estimator regulariser, "dip-plain" without."""
        return "dip" if self.loss_estimator_weight > 0 else "dip-plain"


def run_dip(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    config: DIPConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Deep image prior counterfactuals for ``images`` ``[N, C, H, W]`` in [-1, 1], one prior per image.

    Args:
        images, targets: the queries and their target classes (0/1).
        classifier: the explained classifier; it needs a loss-estimator head (``loss_estimate``) unless
            ``loss_estimator_weight`` is 0.
        config: ``DIPConfig``.
        reporter: progress and cancellation.

    Returns one ``CounterfactualResult`` per image; ``reconstruction`` is the stage-1 pre-image.
    """
    cfg = config or DIPConfig()
    reporter = reporter or Reporter(what="dip")
    layer = cfg.layer or first_block_layer(classifier)
    use_estimator = cfg.loss_estimator_weight > 0
    probe = ClassifierProbe(classifier, [layer], loss_estimate=use_estimator)
    device = module_device(classifier)
    label = str(getattr(classifier, "target", "label"))
    n = images.shape[0]
    results = []
    for i in range(n):
        sub = reporter.sub(i / n, (i + 1) / n)
        results.append(
            _one_image(
                images[i : i + 1].to(device),
                int(targets[i]),
                probe,
                layer,
                cfg,
                label,
                sub,
                f"image {i + 1}/{n}",
            )
        )
    return results


def _one_image(
    x: torch.Tensor,
    target: int,
    probe: ClassifierProbe,
    layer: str,
    cfg: DIPConfig,
    label: str,
    reporter: Reporter,
    where: str,
) -> CounterfactualResult:
    t0 = time.time()
    tg = torch.tensor([target], device=x.device)
    with torch.no_grad():
        ref = probe(x)
    f_query = ref.features[layer].detach()
    p_query = float(torch.sigmoid(ref.logit)[0])
    beta = cfg.loss_estimator_weight
    if beta > 0:
        l_target = float(cfg.loss_target) if cfg.loss_target is not None else float(ref.loss_estimate[0])
    else:
        l_target = None
    prior = DeepImagePriorUNet(
        tuple(x.shape[-2:]),
        out_channels=x.shape[1],
        input_channels=cfg.input_channels,
        channels=cfg.channels,
        skip_channels=cfg.skip_channels,
        noise_scale=cfg.noise_scale,
        seed=cfg.seed,
    ).to(x.device)
    opt = torch.optim.Adam(prior.parameters(), lr=cfg.lr)
    total = cfg.pixel_warmup_steps + cfg.preimage_steps + cfg.counterfactual_steps
    for step in range(cfg.pixel_warmup_steps):
        reporter.check()
        loss = (prior() - x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            reporter(step + 1, total, f"{where}: warm-up on the query's pixels, step {step + 1}")
    warm = cfg.pixel_warmup_steps
    # A new objective starts with a new optimiser state: moment estimates from fitting pixels (tiny gradients
    # near convergence) would turn the first steps on the feature loss into huge jumps.
    opt = torch.optim.Adam(prior.parameters(), lr=cfg.lr)
    frame_steps = evenly_spaced_steps(cfg.counterfactual_steps, cfg.path_frames)
    frames, history = [], []

    def step_loss(out: torch.Tensor, with_entropy: bool):
        probe_out = probe(out)
        terms = {"feature": feature_distance(probe_out.features[layer], f_query)}
        if with_entropy:
            terms["entropy"] = cfg.entropy_weight * target_cross_entropy(probe_out.logit, tg)
        if beta > 0:
            terms["loss_estimator"] = beta * (probe_out.loss_estimate - l_target).abs()
        return sum(terms.values()), terms, probe_out

    preimage = None
    for step in range(cfg.preimage_steps + cfg.counterfactual_steps):
        reporter.check()
        stage2 = step >= cfg.preimage_steps
        out = prior()
        if stage2 and preimage is None:
            preimage = out.detach()
            opt = torch.optim.Adam(prior.parameters(), lr=cfg.lr)
        loss, terms, _ = step_loss(out, with_entropy=stage2)
        if stage2 and (step - cfg.preimage_steps) in frame_steps:
            frames.append(out.detach()[0].cpu())
        stage_step = step - cfg.preimage_steps if stage2 else step
        # the pre-image stage from noise (no warm-up) is plain DIP fitting and needs no ramp
        ramp = cfg.lr_rampup_steps if (stage2 or warm > 0) else 0
        set_ramped_lr(opt, cfg.lr, stage_step, ramp)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        done = warm + step + 1
        if step % 10 == 0 or done == total:
            history.append({"step": step, **{k: float(v.detach().sum()) for k, v in terms.items()}})
            stage = "counterfactual" if stage2 else "pre-image"
            reporter(
                done, total, f"{where}: {stage}, step {done}/{total}, loss {float(loss.detach().sum()):.4f}"
            )
    with torch.no_grad():
        out = prior()
        if preimage is None:  # no counterfactual stage ran
            preimage = out
        final = probe(out)
        pre = probe(preimage)
    frames.append(out[0].cpu())  # evenly_spaced_steps always includes the last step
    path = stack_frames(frames)
    with torch.no_grad():
        p_path = torch.sigmoid(probe(path.to(x.device)).logit).cpu()
    kind = "prototype" if (p_query >= 0.5) == bool(target) else "criticism"
    details = {
        "variant": cfg.variant,
        "layer": layer,
        "loss_target": l_target,
        "preimage_psnr": float(fidelity.psnr(preimage, x)[0]),
        "preimage_feature_distance": float(feature_distance(pre.features[layer], f_query)[0]),
        "counterfactual_feature_distance": float(feature_distance(final.features[layer], f_query)[0]),
        "loss_history": history,
    }
    if final.loss_estimate is not None:
        details["loss_estimate_preimage"] = float(pre.loss_estimate[0])
        details["loss_estimate_counterfactual"] = float(final.loss_estimate[0])
    return CounterfactualResult(
        method="dip",
        kind=kind,
        target=target,
        label=label,
        query=x[0].cpu(),
        counterfactual=out[0].cpu(),
        probability=float(torch.sigmoid(final.logit)[0]),
        query_probability=p_query,
        reconstruction=preimage[0].cpu(),
        reconstruction_probability=float(torch.sigmoid(pre.logit)[0]),
        path=path,
        path_probabilities=p_path.tolist(),
        parameters={**asdict(cfg), "layer": layer},
        details=details,
        seconds=time.time() - t0,
    )
