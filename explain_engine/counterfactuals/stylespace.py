"""Single-dimension StyleSpace counterfactuals (papers/003, Eq. 3-5, for one image).

The query's styles S (given, or projected here with ``projection.project_images``) are changed in one
dimension d only: s_d is clamped to its low or high value over random samples (``StyleRanges`` min/max, or
percentiles), exactly as the sweep does, and G(S^{d-}) or G(S^{d+}) is the counterfactual.

When no dimension is named, the dimension and direction whose clamp moves the target-class probability most
is chosen by a quick screening with the sweep's machinery (``sweep.sweep_deltas`` in ``screening`` mode): one
backward pass ranks every dimension by its first-order effect, the ``screening_top_k`` best are clamped
exactly, and the best exact one wins. When a dimension but no direction is named, both directions are
evaluated exactly and the one that moves toward the target wins.

The path is the clamp applied gradually: s_d moves from its value to the clamp value in ``path_frames`` equal
steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..params import check, param
from ..sweep import StyleSweeper, SweepConfig, sweep_deltas
from .base import (
    ClampedInput,
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_positive,
    classifier_logit,
    stack_frames,
    styles_for,
    synthesize,
)

__all__ = ["StyleSpaceConfig", "run_stylespace"]

DIRECTIONS = ("low", "high")


@dataclass
class StyleSpaceConfig:
    """Settings of the single-dimension counterfactual.

    Attributes:
        dimension: the style dimension to clamp (index into S), or None to screen for the best one.
        direction: "low" or "high", or None for the one that moves toward the target.
        clamp: "minmax" or "percentile" (the sweep's clamp values).
        percentile: with clamp="percentile": low = p-th, high = (100 - p)-th percentile.
        screening_top_k: dimensions per image evaluated exactly after the gradient screening.
        ranges_samples: random samples for the style ranges when none are given.
        path_frames: frames of the gradual clamp.
        projection_steps: projection steps when no styles are given.
    """

    dimension: int | None = param(None, min=0, max=10_000_000)
    direction: str | None = param(None, choices=DIRECTIONS)
    clamp: str = param("minmax", choices=("minmax", "percentile"))
    percentile: float | None = param(None, min=0.0, max=50.0)
    screening_top_k: int = param(64, min=1, max=10_000)
    ranges_samples: int = param(10_000, min=1, max=10_000_000)
    path_frames: int = param(12, min=1, max=200)
    projection_steps: int = param(300, min=1, max=10_000)

    def __post_init__(self):
        check(self, CounterfactualError)
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise CounterfactualError(f"direction must be 'low', 'high' or None, got {self.direction!r}")
        if self.direction is not None and self.dimension is None:
            raise CounterfactualError("a direction needs a dimension")
        if self.dimension is not None and (not isinstance(self.dimension, int) or self.dimension < 0):
            raise CounterfactualError(f"dimension must be a non-negative int, got {self.dimension!r}")
        if self.clamp not in ("minmax", "percentile"):
            raise CounterfactualError(f"clamp must be 'minmax' or 'percentile', got {self.clamp!r}")
        check_positive(
            screening_top_k=self.screening_top_k,
            ranges_samples=self.ranges_samples,
            path_frames=self.path_frames,
        )


def _clamp_values(ranges, cfg: StyleSpaceConfig) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return ranges.clamp_values(cfg.clamp, cfg.percentile)
    except (KeyError, ValueError) as exc:
        raise CounterfactualError(str(exc).strip("'\"")) from None


def run_stylespace(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    generator,
    discriminator=None,
    styles: torch.Tensor | None = None,
    ranges=None,
    config: StyleSpaceConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Single-dimension counterfactuals for ``images`` ``[N, C, H, W]`` in [-1, 1] (the generator's size).

    Args:
        images, targets: the queries and their target classes (0/1).
        classifier, generator: the explained classifier and the StyleGAN2 generator.
        discriminator: optional, used by the projection when no styles are given.
        styles: ``[N, D]`` projected styles; projected here when None.
        ranges: ``StyleRanges`` giving the clamp values; estimated from ``ranges_samples`` random samples when
            None.
        config: ``StyleSpaceConfig``.
        reporter: progress and cancellation.

    Returns one ``CounterfactualResult`` per image; ``details`` names the dimension (index, layer, channel),
    the direction, the original and clamped values and the change of the target-class probability.
    """
    cfg = config or StyleSpaceConfig()
    reporter = reporter or Reporter(what="stylespace")
    t0 = time.time()
    G = generator
    G.requires_grad_(False)
    device = next(G.parameters()).device
    x = images.to(device)
    n = x.shape[0]
    layout = G.style_layout
    if cfg.dimension is not None and cfg.dimension >= layout.dims:
        raise CounterfactualError(
            f"dimension {cfg.dimension} is out of range for {layout.dims} style dimensions"
        )
    tg = torch.as_tensor(list(targets), dtype=torch.long)
    s0 = styles_for(
        x,
        generator=G,
        classifier=classifier,
        discriminator=discriminator,
        styles=styles,
        ranges=ranges,
        projection_steps=cfg.projection_steps,
        reporter=reporter.sub(0.0, 0.4) if styles is None else None,
    )
    reporter.check()
    ranges_note = "given"
    if ranges is None:
        from ..ranges import estimate_style_ranges

        ranges = estimate_style_ranges(G, num_samples=cfg.ranges_samples)
        ranges_note = f"estimated from {cfg.ranges_samples} random samples"
    low, high = (v.to(device).float() for v in _clamp_values(ranges, cfg))
    C = ClampedInput(classifier)  # the sweep classifies raw generator output
    with torch.no_grad():
        p_base = torch.sigmoid(classifier_logit(classifier, synthesize(G, s0))).cpu()
        p_query = torch.sigmoid(classifier_logit(classifier, x)).cpu()
    # change of P(label) when clamping low / high: [N, D or 1, 2]
    if cfg.dimension is None:
        sweep = sweep_deltas(
            G,
            C,
            s0,
            (low, high),
            config=SweepConfig(mode="screening", screening_top_k=min(cfg.screening_top_k, layout.dims)),
            progress_fn=reporter.sub(0.4, 0.8),
            abort_fn=reporter.abort_fn,
        )
        deltas = torch.from_numpy(sweep.deltas.copy())
        change = torch.stack([-deltas[..., 0], deltas[..., 1]], dim=-1)
        eligible = torch.from_numpy(sweep.exact_mask.copy())[..., None].expand_as(change)
        candidates = None
    else:
        sweeper = StyleSweeper(G, C, low, high, SweepConfig(mode="exact"))
        change = torch.empty(n, 1, 2)
        with torch.no_grad():
            for i in range(n):
                probs = sweeper.evaluate_exact(s0[i : i + 1], [cfg.dimension]).cpu()
                change[i, 0] = probs[0] - p_base[i]
        eligible = torch.ones_like(change, dtype=torch.bool)
        if cfg.direction is not None:
            eligible[..., 1 - DIRECTIONS.index(cfg.direction)] = False  # only the named direction
        candidates = [cfg.dimension]
    reporter.sub(0.8, 1.0)(0, 1, "rendering the clamp")
    label = str(getattr(classifier, "target", "label"))
    seconds_setup = time.time() - t0
    results = []
    for i in range(n):
        reporter.check()
        t_img = time.time()
        toward = change[i] if int(tg[i]) == 1 else -change[i]  # change of the target-class probability
        toward = torch.where(eligible[i], toward, torch.full_like(toward, -torch.inf))
        flat = int(torch.argmax(toward.flatten()))
        row, direction_index = divmod(flat, 2)
        dim = candidates[row] if candidates is not None else row
        direction = DIRECTIONS[direction_index]
        value = (low if direction == "low" else high)[dim]
        original = s0[i, dim]
        steps = (
            torch.linspace(0, 1, cfg.path_frames, device=device)
            if cfg.path_frames > 1
            else torch.ones(1, device=device)
        )
        path_styles = s0[i : i + 1].repeat(len(steps), 1)
        path_styles[:, dim] = original + (value - original) * steps
        with torch.no_grad():
            frames = synthesize(G, path_styles)
            p_path = torch.sigmoid(classifier_logit(classifier, frames)).cpu()
        layer, channel = layout.locate(dim)
        p_cf = float(p_path[-1])
        details = {
            "dimension": dim,
            "layer": layer.name,
            "channel": int(channel),
            "layer_kind": layer.kind,
            "resolution": layer.resolution,
            "direction": direction,
            "original_value": float(original),
            "clamp_value": float(value),
            "clamp": cfg.clamp,
            "ranges": ranges_note,
            "screened": cfg.dimension is None,
            "probability_change": p_cf - float(p_base[i]),
            "expected_target_probability_change": float(toward.flatten()[flat]),
        }
        kind = "prototype" if (float(p_query[i]) >= 0.5) == bool(tg[i]) else "criticism"
        results.append(
            CounterfactualResult(
                method="stylespace",
                kind=kind,
                target=int(tg[i]),
                label=label,
                query=x[i].cpu(),
                counterfactual=frames[-1].cpu(),
                probability=p_cf,
                query_probability=float(p_query[i]),
                reconstruction=frames[0].cpu(),
                reconstruction_probability=float(p_base[i]),
                path=stack_frames(list(frames)),
                path_probabilities=p_path.tolist(),
                parameters={**asdict(cfg), "styles_given": styles is not None},
                details=details,
                seconds=seconds_setup / n + time.time() - t_img,
            )
        )
    reporter(1, 1, "done")
    return results
