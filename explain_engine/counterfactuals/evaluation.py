"""How good is a counterfactual (or a saliency map)? Validity, proximity, locality, realism, COUT, time.

``counterfactual_metrics`` returns one flat dict of floats per result (NaN where a figure does not apply or a
model it needs is missing), so tables over many results are plain column means. Images are ``[C, H, W]`` or
``[1, C, H, W]`` in [-1, 1]; differences are measured on the [0, 1] display scale (a difference of 1 = black
to white); masks are ``[H, W]`` booleans (numpy arrays or tensors).

Definitions (P = the classifier's probability of its label, P_t = probability of the target class):

* validity: ``reached_target`` (1 if P_t(x') >= 0.5), ``flipped`` (1 if the decision on x' differs from the
  decision on the query x), ``probability_change`` = P(x') - P(x), ``target_probability_change`` =
  P_t(x') - P_t(x).
* proximity to the query: ``l1`` = mean |x' - x|, ``l2`` = root mean square of x' - x (both per pixel and
  channel, [0, 1] scale), ``ssim`` (``fidelity.ssim``), ``perceptual`` (``fidelity.PerceptualDistance``: LPIPS
  when its backbone is on disk, else the classifier-feature distance; ``perceptual_kind`` in the result dict
  of ``counterfactual_metrics`` is not numeric and is returned separately by ``perceptual_kind_of``).
* locality of the explanation map: for counterfactuals the map is the *edit* |x' - r| (channel mean, [0, 1]
  scale), where r is the method's reconstruction of the query when it has one (the generator's G(S0), the
  deep image prior's pre-image) and the query otherwise, so that the reconstruction error, which is not part
  of the explanation, does not count as a change; for saliency methods it is the heatmap. ``mass_in_lung`` /
  ``mass_in_opacity`` = share of the map's total inside the mask (threshold-free); ``changed_fraction`` =
  share of all pixels that changed (edit > ``change_threshold``, or heatmap >= 0.5); ``changed_in_lung`` /
  ``changed_in_opacity`` = share of the changed pixels inside the mask; ``pointing_game_opacity`` = 1 if the
  map's maximum lies in the opacity mask. ``lung_area_fraction`` and ``opacity_area_fraction`` (the masks'
  share of the image) are the chance levels of these shares.
* realism: ``discriminator_logit`` (and ``discriminator_logit_query``), D's raw score, higher = more real,
  with the minibatch-stddev group set to one image; ``loss_estimate`` (and ``loss_estimate_query``) from a
  classifier with a loss-estimator head, higher = less typical for the classifier.
* ``cout``: see ``cout_score``.
* ``seconds``: the method's wall time for the image.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..metrics import fidelity
from ..metrics.fidelity import default_perceptual
from ..metrics.realism import discriminator_logit
from .base import CounterfactualError, as_image_batch, resolve_target, target_probability

__all__ = [
    "CoutCurve",
    "counterfactual_metrics",
    "cout_score",
    "explanation_locality",
]


class CoutCurve:
    """The pixel-swap curve of ``cout_score``: ``fractions[k]`` of pixels swapped and ``scores[k]`` =
    2 * P_target - 1 after that many swaps (both numpy ``[T + 1]``), and the area ``score``."""

    def __init__(self, fractions: np.ndarray, scores: np.ndarray):
        self.fractions = fractions
        self.scores = scores
        self.score = float(np.sum((scores[1:] + scores[:-1]) / 2 * np.diff(fractions)))


@torch.no_grad()
def cout_score(
    classifier,
    query: torch.Tensor,
    counterfactual: torch.Tensor,
    target: int,
    *,
    steps: int = 50,
    batch_size: int = 64,
) -> CoutCurve:
    """COUT, the counterfactual transition score of Khorram & Fuxin (CVPR 2022) as used by DiME and ACE.

    Definition used here, for one query ``x`` and counterfactual ``x'`` (``[C, H, W]`` or ``[1, C, H, W]``):

    1. Order the P = H * W pixel positions by decreasing ``|x' - x|`` summed over channels (ties: by position,
       row-major, so the order is deterministic).
    2. For k = 0 .. T (``T = steps``) build ``x^(k)``: the query with the first ``n_k = round(k * P / T)``
       positions of that order replaced (all channels) by the counterfactual's pixels; ``x^(0) = x`` and
       ``x^(T) = x'``.
    3. Score every step with ``s_k = P_t(x^(k)) - P_s(x^(k))``, the probability of the target class minus that
       of the other class; for one sigmoid output that is ``2 * P_t - 1``, in [-1, 1].
    4. COUT is the area under ``s`` over the fraction of swapped pixels ``n_k / P`` in [0, 1] (trapezoidal
       rule), hence in [-1, 1]: near 1 when a few of the most-changed pixels already convince the classifier,
       near -1 when even the full counterfactual does not, 0 e.g. when P_t rises linearly from 0 to 1.

    Returns a ``CoutCurve`` (``.score`` is COUT). Raises ``CounterfactualError`` for mismatched shapes.
    """
    x = as_image_batch(query, name="query")
    y = as_image_batch(counterfactual, name="counterfactual")
    if x.shape != y.shape or x.shape[0] != 1:
        raise CounterfactualError(
            f"query and counterfactual must be one image of the same shape; got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if steps < 1:
        raise CounterfactualError(f"steps must be >= 1, got {steps}")
    target = int(target)
    _, c, h, w = x.shape
    p_count = h * w
    magnitude = (y - x).abs().sum(1).flatten()
    order = torch.sort(magnitude, descending=True, stable=True).indices
    counts = [round(k * p_count / steps) for k in range(steps + 1)]
    device = next((t.device for t in _tensors_of(classifier)), torch.device("cpu"))
    x_flat, y_flat = x.reshape(c, -1), y.reshape(c, -1)
    probs = []
    for start in range(0, steps + 1, batch_size):
        batch = []
        for n in counts[start : start + batch_size]:
            img = x_flat.clone()
            idx = order[:n]
            img[:, idx] = y_flat[:, idx]
            batch.append(img.reshape(c, h, w))
        probs.append(classifier(torch.stack(batch).to(device)).float().cpu())
    p_t = target_probability(torch.cat(probs), target).double().numpy()
    return CoutCurve(np.asarray(counts, np.float64) / p_count, 2 * p_t - 1)


def _tensors_of(module):
    if isinstance(module, torch.nn.Module):
        yield from module.parameters()
        yield from module.buffers()


def _mask(mask, shape: tuple[int, int], name: str) -> torch.Tensor | None:
    if mask is None:
        return None
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if tuple(m.shape) != tuple(shape):
        raise CounterfactualError(
            f"{name} must be [H, W] = {list(shape)} like the image, got {list(m.shape)}"
        )
    return m.bool().cpu()


def explanation_locality(
    explanation: torch.Tensor, *, changed: torch.Tensor, lung_mask=None, opacity_mask=None
) -> dict[str, float]:
    """Locality figures of an explanation map ``[H, W]`` (>= 0) and its ``changed`` pixels ``[H, W]`` (bool):
    ``mass_in_*``, ``changed_fraction``, ``changed_in_*``, ``pointing_game_opacity`` and the masks' area
    fractions; see the module docstring. NaN where a mask is missing or nothing changed."""
    explanation = explanation.detach().float().cpu()
    shape = tuple(explanation.shape)
    masks = {
        "lung": _mask(lung_mask, shape, "lung_mask"),
        "opacity": _mask(opacity_mask, shape, "opacity_mask"),
    }
    total = float(explanation.sum())
    n_changed = int(changed.sum())
    out = {"changed_fraction": n_changed / explanation.numel()}
    for name, m in masks.items():
        if m is None:
            out.update(
                {
                    f"mass_in_{name}": math.nan,
                    f"changed_in_{name}": math.nan,
                    f"{name}_area_fraction": math.nan,
                }
            )
            continue
        out[f"mass_in_{name}"] = float(explanation[m].sum()) / total if total > 0 else math.nan
        out[f"changed_in_{name}"] = int((changed & m).sum()) / n_changed if n_changed else math.nan
        out[f"{name}_area_fraction"] = float(m.float().mean())
    if masks["opacity"] is not None and total > 0:
        out["pointing_game_opacity"] = float(masks["opacity"].flatten()[int(explanation.argmax())])
    else:
        out["pointing_game_opacity"] = math.nan
    return out


@torch.no_grad()
def counterfactual_metrics(
    query: torch.Tensor,
    counterfactual: torch.Tensor,
    *,
    classifier,
    target: int | str,
    reference: torch.Tensor | None = None,
    heatmap: torch.Tensor | None = None,
    lung_mask=None,
    opacity_mask=None,
    discriminator=None,
    perceptual="default",
    change_threshold: float = 0.05,
    cout_steps: int = 50,
    seconds: float | None = None,
) -> dict[str, float]:
    """All figures of the module docstring for one result, as a flat ``{name: float}``.

    Args:
        query, counterfactual: ``[C, H, W]`` (or ``[1, C, H, W]``) in [-1, 1].
        classifier: the explained classifier (probability of its label ``[N]``; ``loss_estimate`` is used when
            it has one).
        target: the target class (0/1 or a label spelling, see ``base.resolve_target``).
        reference: the method's reconstruction of the query, from which the edit is measured (default: query).
        heatmap: ``[H, W]`` in [0, 1] for saliency results; then it is the explanation map.
        lung_mask, opacity_mask: ``[H, W]`` bool, optional.
        discriminator: a StyleGAN2 discriminator for ``discriminator_logit``, optional.
        perceptual: a ``fidelity.PerceptualDistance``, None to skip, or "default" (``default_perceptual``).
        change_threshold: an edit larger than this (on the [0, 1] scale) makes a pixel "changed".
        cout_steps: T of ``cout_score``; 0 skips COUT.
        seconds: the method's wall time, copied to ``seconds``.
    """
    x = as_image_batch(query, name="query")
    y = as_image_batch(counterfactual, name="counterfactual")
    if x.shape != y.shape or x.shape[0] != 1:
        raise CounterfactualError(
            f"query and counterfactual must be one image of the same shape; got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    r = as_image_batch(reference, name="reference") if reference is not None else x
    if r.shape != x.shape:
        raise CounterfactualError(
            f"reference must have the query's shape {tuple(x.shape)}, got {tuple(r.shape)}"
        )
    label = getattr(classifier, "target", "label")
    target = resolve_target(target, str(label))
    if not 0 <= change_threshold < 1:
        raise CounterfactualError(f"change_threshold must lie in [0, 1), got {change_threshold}")
    device = next((t.device for t in _tensors_of(classifier)), torch.device("cpu"))
    p_q, p_cf = (float(v) for v in classifier(torch.cat([x, y]).to(device)).float().cpu())
    pt_q, pt_cf = target_probability(p_q, target), target_probability(p_cf, target)
    out: dict[str, float] = {
        "probability_query": p_q,
        "probability": p_cf,
        "probability_change": p_cf - p_q,
        "target_probability_change": pt_cf - pt_q,
        "reached_target": float(pt_cf >= 0.5),
        "flipped": float((p_cf >= 0.5) != (p_q >= 0.5)),
    }
    xu, yu = fidelity.to_unit(x), fidelity.to_unit(y)
    out["l1"] = float((yu - xu).abs().mean())
    out["l2"] = float((yu - xu).square().mean().sqrt())
    out["ssim"] = float(fidelity.ssim(y, x)[0])
    if isinstance(perceptual, str):
        if perceptual != "default":
            raise CounterfactualError(
                f"perceptual must be a PerceptualDistance, None or 'default', got {perceptual!r}"
            )
        perceptual = default_perceptual(classifier)
    out["perceptual"] = (
        float(perceptual.to(device)(y.to(device), x.to(device))[0]) if perceptual is not None else math.nan
    )

    if heatmap is not None:
        explanation = torch.as_tensor(heatmap).detach().float().cpu()
        if tuple(explanation.shape) != tuple(x.shape[-2:]):
            raise CounterfactualError(
                f"heatmap must be [H, W] = {list(x.shape[-2:])}, got {list(explanation.shape)}"
            )
        changed = (
            explanation >= 0.5 * float(explanation.max())
            if float(explanation.max()) > 0
            else torch.zeros_like(explanation, dtype=torch.bool)
        )
    else:
        explanation = (fidelity.to_unit(y) - fidelity.to_unit(r)).abs().mean(1)[0].cpu()
        changed = explanation > change_threshold
    out.update(
        explanation_locality(explanation, changed=changed, lung_mask=lung_mask, opacity_mask=opacity_mask)
    )

    if discriminator is not None:
        d = discriminator_logit(discriminator, torch.cat([y, x]).to(device)).float().cpu()
        out["discriminator_logit"], out["discriminator_logit_query"] = float(d[0]), float(d[1])
    else:
        out["discriminator_logit"] = out["discriminator_logit_query"] = math.nan
    if callable(getattr(classifier, "loss_estimate", None)):
        le = classifier.loss_estimate(torch.cat([y, x]).to(device)).float().cpu()
        out["loss_estimate"], out["loss_estimate_query"] = float(le[0]), float(le[1])
    else:
        out["loss_estimate"] = out["loss_estimate_query"] = math.nan
    out["cout"] = cout_score(classifier, x, y, target, steps=cout_steps).score if cout_steps else math.nan
    out["seconds"] = float(seconds) if seconds is not None else math.nan
    return out
