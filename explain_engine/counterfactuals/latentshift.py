"""Latent Shift: counterfactuals by moving an autoencoder's latent code along the classifier's gradient.

Cohen et al. 2021 ("Gifsplanation via Latent Shift"): encode the query, ``z0 = E(x)``; the reconstruction is
``D(z0)``; the counterfactual is ``D(z0 + lambda * dz)`` where ``dz`` is the gradient of the classifier's score
with respect to the latent code at ``z0``; decoding a range of lambda gives a sequence (an animated GIF) from
the reconstruction to the counterfactual, which radiologists read as a film. Differences are measured from the
reconstruction, so the autoencoder's own reconstruction error is not shown as part of the explanation.

Choices made here:

* **Score and direction.** The gradient of the *target* class's log-odds of the classifier on the clamped
  decoded image (``z`` for target 1, ``-z`` for target 0); lambda >= 0 moves toward the target.
* **Units of lambda.** The gradient is normalised to unit root-mean-square and scaled by the root-mean-square
  of the query's latent code, so lambda = 1 moves the code by about its own size whatever the autoencoder's
  scale: ``z(lambda) = z0 + lambda * rms(z0) * g / rms(g)``.
* **Search.** lambda grows in steps of ``lambda_step`` until the target class's probability reaches the goal
  (0.5 for a criticism; for a prototype ``max(prototype_confidence, p0 + (1 - p0) / 2)``, as in ``gci``) or
  ``max_steps`` is used up; the crossing is then refined by ``refine_steps`` bisection steps. The gradient is
  taken once at ``z0`` (the paper's method); ``iterative=True`` takes it again after every step (a path that
  can bend, at the price of one backward pass per step, and no refinement).
* **The sequence.** ``path_frames`` frames evenly spaced in lambda from 0 (the reconstruction) to the chosen
  lambda.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..params import check, param
from .base import (
    IMAGE_RANGE,
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_positive,
    check_probability,
    classifier_logit,
    confidence_goal,
    module_device,
    stack_frames,
    target_log_odds,
)

__all__ = ["LatentShiftConfig", "latent_direction", "run_latentshift"]


@dataclass
class LatentShiftConfig:
    """Settings of Latent Shift.

    Attributes:
        lambda_step: step of the lambda search, in units of the latent code's root-mean-square.
        max_steps: steps of the search before giving up (lambda at most ``lambda_step * max_steps``).
        refine_steps: bisection steps between the last two lambdas of the search (single-gradient variant).
        iterative: take the gradient again after every step instead of once at the query's code.
        confidence: the criticism's goal for the target class's probability.
        prototype_confidence: the least goal of a prototype (target = the classifier's decision).
        path_frames: frames of the sequence, reconstruction and counterfactual included.
        batch_size: images per pass.
    """

    lambda_step: float = param(0.05, min=1e-6, max=10.0)
    max_steps: int = param(100, min=1, max=10_000)
    refine_steps: int = param(8, min=0, max=64)
    iterative: bool = False
    confidence: float = param(0.5, min=1e-6, max=1 - 1e-6)
    prototype_confidence: float = param(0.95, min=1e-6, max=1 - 1e-6)
    path_frames: int = param(10, min=2, max=200)
    batch_size: int = param(16, min=1, max=256)

    def __post_init__(self):
        check(self, CounterfactualError)
        check_positive(
            lambda_step=self.lambda_step,
            max_steps=self.max_steps,
            path_frames=self.path_frames,
            batch_size=self.batch_size,
        )
        check_probability(confidence=self.confidence, prototype_confidence=self.prototype_confidence)
        if not isinstance(self.refine_steps, int) or self.refine_steps < 0:
            raise CounterfactualError(f"refine_steps must be an integer >= 0, got {self.refine_steps!r}")
        if self.path_frames < 2:
            raise CounterfactualError(f"path_frames must be >= 2, got {self.path_frames}")


def _decode(autoencoder, z: torch.Tensor) -> torch.Tensor:
    return autoencoder.decode(z).clamp(*IMAGE_RANGE)


def latent_direction(autoencoder, classifier, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The gradient of the target log-odds of ``classifier(D(z))`` w.r.t. ``z``, scaled per image to the
    root-mean-square of ``z``: the shift of lambda = 1. Images whose gradient vanishes get a zero direction."""
    with torch.enable_grad():
        zz = z.detach().clone().requires_grad_(True)
        score = target_log_odds(classifier_logit(classifier, _decode(autoencoder, zz)), targets)
        (grad,) = torch.autograd.grad(score.sum(), zz)
    dims = tuple(range(1, z.ndim))
    g_rms = grad.square().mean(dims, keepdim=True).sqrt()
    z_rms = z.square().mean(dims, keepdim=True).sqrt()
    return torch.where(g_rms > 0, grad / g_rms.clamp_min(1e-30), torch.zeros_like(grad)) * z_rms


def _target_probability(classifier, autoencoder, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(target_log_odds(classifier_logit(classifier, _decode(autoencoder, z)), targets))


def run_latentshift(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    autoencoder,
    config: LatentShiftConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Latent Shift counterfactuals for ``images`` ``[N, C, H, W]`` in [-1, 1] (the autoencoder's size).

    Returns one ``CounterfactualResult`` per image (metrics not yet filled): the counterfactual ``D(z(lambda))``,
    the reconstruction ``D(z0)``, the sequence as ``path`` and the search in ``details``.
    """
    cfg = config or LatentShiftConfig()
    reporter = reporter or Reporter(what="latent shift")
    AE, C = autoencoder, classifier
    expected = (AE.img_channels, AE.img_resolution, AE.img_resolution)
    if tuple(images.shape[1:]) != expected:
        raise CounterfactualError(
            f"images must be [N, {expected[0]}, {expected[1]}, {expected[2]}] for this autoencoder, got "
            f"{list(images.shape)}; resize them to its resolution first"
        )
    device = module_device(AE)
    if module_device(C) != device:
        raise CounterfactualError(f"the autoencoder is on {device} and the classifier on {module_device(C)}")
    AE.eval().requires_grad_(False)
    label = str(getattr(C, "target", "label"))
    results: list[CounterfactualResult] = []
    n = images.shape[0]
    for start in range(0, n, cfg.batch_size):
        t0 = time.time()
        x = images[start : start + cfg.batch_size].to(device)
        tg = torch.as_tensor(list(targets[start : start + cfg.batch_size]), dtype=torch.long, device=device)
        part = reporter.sub(start / n, min(start + cfg.batch_size, n) / n)
        results += _shift_batch(x, tg, AE, C, cfg, part, label, t0)
    reporter(1, 1, "done")
    return results


def _shift_batch(x, tg, AE, C, cfg: LatentShiftConfig, reporter: Reporter, label: str, t0: float):
    m = x.shape[0]
    with torch.no_grad():
        z0 = AE.encode(x)
        recon = _decode(AE, z0)
        logits = classifier_logit(C, torch.cat([x, recon]))
    pt_query = torch.sigmoid(target_log_odds(logits[:m], tg))
    pt_recon = torch.sigmoid(target_log_odds(logits[m:], tg))
    prototype, _, goal = confidence_goal(
        pt_query, pt_recon, confidence=cfg.confidence, prototype_confidence=cfg.prototype_confidence
    )
    shape = (m,) + (1,) * (z0.ndim - 1)
    direction = latent_direction(AE, C, z0, tg)
    z = z0.clone()
    trajectory = [z0.clone()]  # the codes after each step (iterative variant)
    lam_hi = torch.full((m,), float("nan"), device=x.device)  # first lambda that reached the goal
    prob_at = [pt_recon.clone()]
    active = torch.ones(m, dtype=torch.bool, device=x.device)
    steps_used = torch.zeros(m, dtype=torch.long, device=x.device)
    for k in range(1, cfg.max_steps + 1):
        reporter.check()
        if cfg.iterative and k > 1:
            direction = latent_direction(AE, C, z, tg)
        z = torch.where(active.view(shape), z + cfg.lambda_step * direction, z)
        trajectory.append(z.clone())
        p = _target_probability(C, AE, z, tg)
        prob_at.append(p)
        steps_used = torch.where(active, torch.full_like(steps_used, k), steps_used)
        newly = active & (p >= goal)
        lam_hi = torch.where(newly, torch.full_like(lam_hi, k * cfg.lambda_step), lam_hi)
        active = active & ~newly
        reporter(k, cfg.max_steps, f"latent shift step {k}")
        if not bool(active.any()):
            break
    reached = ~torch.isnan(lam_hi)
    lam = torch.where(reached, lam_hi, steps_used.float() * cfg.lambda_step)
    refined = 0
    if not cfg.iterative and cfg.refine_steps and bool(reached.any()):
        # the goal was crossed between lam - step and lam: bisect (the shift is linear in lambda here)
        lo = (lam - cfg.lambda_step).clamp_min(0)
        hi = lam.clone()
        for _ in range(cfg.refine_steps):
            mid = (lo + hi) / 2
            p = _target_probability(C, AE, z0 + mid.view(shape) * direction, tg)
            ok = p >= goal
            hi = torch.where(reached & ok, mid, hi)
            lo = torch.where(reached & ~ok, mid, lo)
            refined += 1
        lam = torch.where(reached, hi, lam)
    frames_per_image = []
    with torch.no_grad():
        for i in range(m):
            if cfg.iterative:
                last = int(steps_used[i])
                picks = torch.linspace(0, last, cfg.path_frames).round().long().tolist()
                codes = torch.stack([trajectory[j][i] for j in picks])
            else:
                lams = torch.linspace(0, float(lam[i]), cfg.path_frames, device=x.device)
                codes = z0[i : i + 1] + lams.view(-1, *shape[1:]) * direction[i : i + 1]
            frames_per_image.append(_decode(AE, codes))
    seconds = (time.time() - t0) / m
    results = []
    for i in range(m):
        frames = frames_per_image[i]
        with torch.no_grad():
            p_path = torch.sigmoid(classifier_logit(C, frames)).cpu()
        counterfactual = frames[-1]
        shift = counterfactual.new_tensor(float(lam[i]))
        details = {
            "latent_space": f"autoencoder latent {list(AE.latent_shape)}",
            "kind": "prototype" if bool(prototype[i]) else "criticism",
            "variant": "iterative" if cfg.iterative else "single gradient",
            "lambda": float(shift),
            "reached_goal": bool(reached[i]),
            "confidence_goal": float(goal[i]),
            "search_steps": int(steps_used[i]),
            "refine_steps": refined if bool(reached[i]) else 0,
            "target_probability_by_step": [round(float(p[i]), 4) for p in prob_at],
        }
        results.append(
            CounterfactualResult(
                method="latentshift",
                kind=details["kind"],
                target=int(tg[i]),
                label=label,
                query=x[i].detach().cpu(),
                counterfactual=counterfactual.detach().cpu(),
                probability=float(p_path[-1]),
                query_probability=float(torch.sigmoid(logits[i])),
                reconstruction=recon[i].detach().cpu(),
                reconstruction_probability=float(torch.sigmoid(logits[m + i])),
                path=stack_frames(list(frames)),
                path_probabilities=[float(v) for v in p_path],
                parameters=asdict(cfg),
                details=details,
                seconds=seconds,
            )
        )
    return results
