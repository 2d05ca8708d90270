"""Generative counterfactual introspection (papers/002) in StyleSpace.

For a query image I whose projection into StyleSpace is S0 (papers/003 Eq. 2), find styles S minimising

    L(S) = lambda * CE(C(G(S)), c') + ||A - G(S)||_1                                  (papers/002, Eq. 2)

by Adam from S0, where A (the *anchor*) is the query I (the paper's choice, default) or its reconstruction
G(S0), and the L1 norm is the mean absolute difference per pixel. lambda is searched per image for the minimal
change that reaches the target (Eq. 1): the smallest lambda whose optimum is classified as c'.

Latent space: S. Projection already gives S, the sweep and the review of papers/003 live there, and its
coordinates are channels of named generator layers, so "the most-changed attributes" of papers/002 become the
most-changed style channels, which the app can show and the sweep can compare. W would only allow edits
shared by all layers, and W+ has no projection in this engine.

Criticisms and prototypes (papers/002, Section III-A): when c' differs from the classifier's decision on the
query the result is a *criticism*: plain cross-entropy toward c', success = P(c') >= ``confidence`` (0.5:
the decision flips). When c' equals that decision the result is a *prototype*: the trivial solution S = S0 is
excluded by asking for more confidence than the query has: success = P(c') >= goal with
``goal = max(prototype_confidence, p0 + (1 - p0) / 2)`` (p0 = the larger of P(c') on the query and on G(S0)),
and the cross-entropy's threshold rises during the optimisation from p0 to ``1 - (1 - goal) / 10`` over the
first half of the steps (``base.target_cross_entropy``), so the optimisation walks toward the class centre.

The lambda search (``search_lambda``) brackets the smallest succeeding lambda by factors of ``lambda_factor``
from ``lambda_init`` (at most ``max_bracket_steps`` expansions), then bisects the bracket geometrically
(lambda spans orders of magnitude) for at most ``bisection_steps`` steps, stopping early once the bracket's
ratio hi / lo is below 1 + ``tolerance``. Alibi's Wachter search, our reference, also uses 10 bisection steps
and a tolerance of 0.05 (there on the probability; here the probability condition is a threshold, so the
tolerance is on lambda). Every trial restarts from S0, so a trial's result depends on its lambda only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from ..params import check, param
from .base import (
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_positive,
    check_probability,
    classifier_logit,
    confidence_goal,
    evenly_spaced_steps,
    stack_frames,
    styles_for,
    synthesize,
    target_cross_entropy,
    target_log_odds,
)

__all__ = ["GCIConfig", "LambdaSearch", "optimise_styles", "run_gci", "search_lambda", "top_changed_styles"]

ANCHORS = ("query", "reconstruction")


@dataclass
class GCIConfig:
    """Settings of generative counterfactual introspection.

    Attributes:
        steps: Adam steps per lambda trial.
        lr: Adam learning rate on S.
        lambda_init: the first lambda tried.
        lambda_factor: bracketing factor (lambda is multiplied or divided by it until the bracket holds).
        max_bracket_steps: at most this many bracketing trials after the first.
        bisection_steps: at most this many bisection trials once bracketed (10 as Alibi).
        tolerance: stop bisecting once hi / lo < 1 + tolerance (0.05 as Alibi).
        confidence: target-class probability a criticism must reach (0.5 = the decision flips).
        prototype_confidence: lowest target-class probability a prototype must reach.
        anchor: "query" (||I - G(S)||_1, papers/002) or "reconstruction" (||G(S0) - G(S)||_1: the change the
            edit makes, without the reconstruction error).
        top_k: how many most-changed style dimensions to report (papers/002 shows five attributes).
        path_frames: frames of the optimisation path kept for the chosen lambda.
        projection_steps: projection steps when no styles are given.
        batch_size: images optimised together.
    """

    steps: int = param(100, min=1, max=10_000)
    lr: float = param(0.02, min=0.0, max=10.0)
    lambda_init: float = param(1.0, min=0.0, max=1e6)
    lambda_factor: float = param(10.0, min=1.0, max=1000.0)
    max_bracket_steps: int = param(6, min=0, max=50)
    bisection_steps: int = param(10, min=0, max=50)
    tolerance: float = param(0.05, min=0.0, max=10.0)
    confidence: float = param(0.5, min=0.0, max=1.0)
    prototype_confidence: float = param(0.95, min=0.0, max=1.0)
    anchor: str = param("query", choices=ANCHORS)
    top_k: int = param(5, min=0, max=1000)
    path_frames: int = param(16, min=1, max=200)
    projection_steps: int = param(300, min=1, max=10_000)
    batch_size: int = param(8, min=1, max=256)

    def __post_init__(self):
        check(self, CounterfactualError)
        check_positive(
            steps=self.steps,
            lr=self.lr,
            lambda_init=self.lambda_init,
            tolerance=self.tolerance,
            path_frames=self.path_frames,
            batch_size=self.batch_size,
        )
        check_probability(confidence=self.confidence, prototype_confidence=self.prototype_confidence)
        if not self.lambda_factor > 1:
            raise CounterfactualError(f"lambda_factor must be > 1, got {self.lambda_factor}")
        if self.max_bracket_steps < 0 or self.bisection_steps < 0 or self.top_k < 0:
            raise CounterfactualError("max_bracket_steps, bisection_steps and top_k must be >= 0")
        if self.anchor not in ANCHORS:
            raise CounterfactualError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")


# ------------------------------------------------------------------------------------------------------------
# The lambda search, independent of what is optimised


@dataclass
class LambdaSearch:
    """Outcome of ``search_lambda`` for one image.

    Attributes:
        lam: the smallest lambda tried that reached the target, or None when none did.
        lower: the largest lambda tried that did not, or None when all did.
        trials: every trial in order, ``{"lambda", "reached", ...}`` plus what ``evaluate`` reported.
    """

    lam: float | None = None
    lower: float | None = None
    trials: list[dict] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.lam is not None


# evaluate(image indices, lambdas) -> one (reached, info dict, payload) per index
Evaluate = Callable[[list[int], list[float]], list[tuple[bool, dict, object]]]


def search_lambda(
    evaluate: Evaluate,
    n: int,
    *,
    init: float = 1.0,
    factor: float = 10.0,
    max_bracket_steps: int = 6,
    bisection_steps: int = 10,
    tolerance: float = 0.05,
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[list[LambdaSearch], list[object]]:
    """Per image, the smallest lambda for which ``evaluate`` reports success, assuming success is monotone in
    it.

    All unfinished images are evaluated together in each round, each with its own lambda:

    1. the first trial uses ``init``;
    2. until a failing and a succeeding lambda are known, the next trial multiplies the largest failing lambda
       by ``factor`` (or divides the smallest succeeding one), at most ``max_bracket_steps`` times;
    3. then the bracket ``[lo, hi]`` is bisected at ``sqrt(lo * hi)`` for at most ``bisection_steps`` trials,
       or until ``hi / lo <= 1 + tolerance``.

    Returns per image the ``LambdaSearch`` and the payload of the chosen trial: the one at ``lam`` when some
    lambda succeeded, else the one with the largest lambda tried (the closest to success). ``on_round(round,
    max_rounds)`` is called before every round.
    """
    searches = [LambdaSearch() for _ in range(n)]
    chosen: list[object] = [None] * n
    fallback_lam = [-math.inf] * n
    unbracketed = [0] * n
    bisected = [0] * n
    active = list(range(n))
    max_rounds = 1 + max_bracket_steps + bisection_steps
    round_index = 0
    while active:
        if on_round is not None:
            on_round(round_index, max_rounds)
        lams = []
        for i in active:
            s = searches[i]
            if s.lam is None and s.lower is None:
                lams.append(init)
            elif s.lam is None:
                lams.append(s.lower * factor)
            elif s.lower is None:
                lams.append(s.lam / factor)
            else:
                lams.append(math.sqrt(s.lower * s.lam))
        outcomes = evaluate(list(active), lams)
        still = []
        for i, lam, (reached, info, payload) in zip(active, lams, outcomes, strict=True):
            s = searches[i]
            was_bracketed = s.lam is not None and s.lower is not None
            s.trials.append({"lambda": lam, "reached": bool(reached), **info})
            if reached:
                s.lam = lam
                chosen[i] = payload
            else:
                s.lower = lam
                if s.lam is None and lam > fallback_lam[i]:
                    fallback_lam[i] = lam
                    chosen[i] = payload
            if was_bracketed:
                bisected[i] += 1
            bracketed = s.lam is not None and s.lower is not None
            if bracketed:
                finished = bisected[i] >= bisection_steps or s.lam / s.lower <= 1 + tolerance
            else:
                unbracketed[i] += 1
                finished = unbracketed[i] > max_bracket_steps
            if not finished:
                still.append(i)
        active = still
        round_index += 1
    return searches, chosen


# ------------------------------------------------------------------------------------------------------------
# One lambda trial for a batch of images


@dataclass
class StyleTrial:
    """Result of ``optimise_styles`` for a batch: final styles ``[N, D]``, images ``[N, C, H, W]``,
    target-class probabilities ``[N]``, L1 distances to the anchor ``[N]`` ([0, 1] scale) and path frames (per
    image a list of ``[C, H, W]`` on the CPU)."""

    styles: torch.Tensor
    images: torch.Tensor
    target_probability: torch.Tensor
    distance: torch.Tensor
    frames: list[list[torch.Tensor]]


def optimise_styles(
    G,
    classifier,
    start: torch.Tensor,
    anchor: torch.Tensor,
    targets: torch.Tensor,
    lambdas: torch.Tensor,
    *,
    steps: int,
    lr: float,
    threshold_start: torch.Tensor,
    threshold_end: torch.Tensor,
    rise_steps: int = 0,
    frame_steps: Sequence[int] = (),
    reporter: Reporter | None = None,
) -> StyleTrial:
    """Minimise ``lambda_i * CE_q(C(G(S_i)), c'_i) + mean |A_i - G(S_i)|`` for every image i by Adam from
    ``start``.

    Args:
        G: generator with ``synthesize_from_styles``.
        classifier: the explained classifier.
        start: ``[N, D]`` initial styles (S0).
        anchor: ``[N, C, H, W]`` images the L1 term measures from.
        targets: ``[N]`` target classes (0/1).
        lambdas: ``[N]`` weights of the cross-entropy term.
        steps, lr: Adam steps and learning rate.
        threshold_start, threshold_end: ``[N]`` confidence thresholds of ``target_cross_entropy``; the
        threshold
            moves linearly from start to end over the first ``rise_steps`` steps (prototypes) and is constant
            when they are equal (criticisms).
        frame_steps: steps at which path frames are kept (0 = S0, ``steps`` = the result).
        reporter: progress per step and cancellation.

    Images in one batch do not influence each other: the loss is a sum of per-image terms and Adam's update is
    element-wise.
    """
    s = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([s], lr=lr)
    frames: list[list[torch.Tensor]] = [[] for _ in range(start.shape[0])]
    frame_steps = set(frame_steps)
    for step in range(steps):
        if reporter is not None:
            reporter.check()
        y = synthesize(G, s)
        if step in frame_steps:
            for i in range(y.shape[0]):
                frames[i].append(y[i].detach().cpu())
        frac = min(1.0, step / rise_steps) if rise_steps > 0 else 1.0
        threshold = threshold_start + (threshold_end - threshold_start) * frac
        ce = target_cross_entropy(classifier_logit(classifier, y), targets, threshold)
        dist = (y - anchor).abs().flatten(1).mean(1)
        loss = lambdas * ce + dist
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if reporter is not None:
            reporter(step + 1, steps)
    with torch.no_grad():
        y = synthesize(G, s)
        p_t = torch.sigmoid(target_log_odds(classifier_logit(classifier, y), targets))
        dist = (y - anchor).abs().flatten(1).mean(1) / 2
    if steps in frame_steps:
        for i in range(y.shape[0]):
            frames[i].append(y[i].detach().cpu())
    return StyleTrial(s.detach(), y.detach(), p_t.detach(), dist.detach(), frames)


def top_changed_styles(
    start: torch.Tensor, result: torch.Tensor, *, layout=None, scale: torch.Tensor | None = None, k: int = 5
) -> list[dict]:
    """The ``k`` style dimensions that changed most between ``start`` and ``result`` (``[D]`` each),
    papers/002's "top five most changed attributes".

    The change is measured in units of ``scale`` (e.g. ``StyleRanges.std``, so that dimensions of different
    spread compare) when given, else raw. Each entry: ``dim``, ``layer``, ``channel`` (when the generator's
    ``layout`` is given), ``start``, ``result``, ``change`` (raw) and ``change_scaled``.
    """
    delta = (result - start).detach().float().cpu()
    scaled = delta / scale.float().cpu().clamp_min(1e-8) if scale is not None else delta
    order = torch.argsort(scaled.abs(), descending=True, stable=True)[:k]
    out = []
    for d in order.tolist():
        entry = {
            "dim": d,
            "start": float(start[d]),
            "result": float(result[d]),
            "change": float(delta[d]),
            "change_scaled": float(scaled[d]),
        }
        if layout is not None:
            layer, channel = layout.locate(d)
            entry.update(layer=layer.name, channel=int(channel))
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------------------------
# The method


def run_gci(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    generator,
    discriminator=None,
    styles: torch.Tensor | None = None,
    ranges=None,
    config: GCIConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """Generative counterfactual introspection for ``images`` ``[N, C, H, W]`` in [-1, 1] (the generator's
    size).

    Args:
        images: the queries.
        targets: the target class of each image (0/1).
        classifier: the explained classifier.
        generator: the StyleGAN2 generator.
        discriminator: optional, used by the projection when no styles are given.
        styles: ``[N, D]`` projected styles of the images; projected here when None.
        ranges: ``StyleRanges`` (optional): the projection's start and the scale of the most-changed styles.
        config: ``GCIConfig``.
        reporter: progress and cancellation.

    Returns one ``CounterfactualResult`` per image (metrics not yet filled).
    """
    cfg = config or GCIConfig()
    reporter = reporter or Reporter(what="gci")
    t0 = time.time()
    G, C = generator, classifier
    G.requires_grad_(False)
    device = next(G.parameters()).device
    x = images.to(device)
    n = x.shape[0]
    tg = torch.as_tensor(list(targets), dtype=torch.long, device=device)
    s0 = styles_for(
        x,
        generator=G,
        classifier=C,
        discriminator=discriminator,
        styles=styles,
        ranges=ranges,
        projection_steps=cfg.projection_steps,
        reporter=reporter.sub(0.0, 0.3) if styles is None else None,
    )
    search_reporter = reporter.sub(0.3 if styles is None else 0.0, 1.0)
    with torch.no_grad():
        recon = synthesize(G, s0)
        logits = classifier_logit(C, torch.cat([x, recon]))
        p_query = torch.sigmoid(logits[:n])
        p_recon = torch.sigmoid(logits[n:])
    pt_query = torch.where(tg.bool(), p_query, 1 - p_query)
    pt_recon = torch.where(tg.bool(), p_recon, 1 - p_recon)
    # Prototypes must beat the query's own confidence, or S = S0 would be a solution.
    prototype, p0, goal = confidence_goal(
        pt_query, pt_recon, confidence=cfg.confidence, prototype_confidence=cfg.prototype_confidence
    )
    threshold_end = torch.where(prototype, 1 - (1 - goal) / 10, goal)
    threshold_start = torch.where(prototype, p0.clamp(1e-4, 1 - 1e-4), goal)
    anchor = x if cfg.anchor == "query" else recon
    frame_steps = evenly_spaced_steps(cfg.steps, cfg.path_frames)
    state = {"round": 0, "rounds": 1}

    def on_round(index: int, total: int) -> None:
        state.update(round=index, rounds=total)

    def evaluate(indices: list[int], lams: list[float]) -> list[tuple[bool, dict, object]]:
        out = []
        chunks = [indices[i : i + cfg.batch_size] for i in range(0, len(indices), cfg.batch_size)]
        lam_of = dict(zip(indices, lams, strict=True))
        for ci, chunk in enumerate(chunks):
            idx = torch.as_tensor(chunk, device=device)
            span = (state["round"] + ci / len(chunks)) / state["rounds"]
            span_end = (state["round"] + (ci + 1) / len(chunks)) / state["rounds"]
            sub = search_reporter.sub(span, span_end)
            trial = optimise_styles(
                G,
                C,
                s0[idx],
                anchor[idx],
                tg[idx],
                torch.as_tensor([lam_of[i] for i in chunk], dtype=torch.float32, device=device),
                steps=cfg.steps,
                lr=cfg.lr,
                threshold_start=threshold_start[idx],
                threshold_end=threshold_end[idx],
                rise_steps=cfg.steps // 2,
                frame_steps=frame_steps,
                reporter=_StepMessages(sub, f"lambda search round {state['round'] + 1}"),
            )
            for j, i in enumerate(chunk):
                reached = bool(trial.target_probability[j] >= goal[i])
                info = {
                    "target_probability": float(trial.target_probability[j]),
                    "l1_to_anchor": float(trial.distance[j]),
                }
                out.append((reached, info, (trial.styles[j].cpu(), trial.images[j].cpu(), trial.frames[j])))
        return out

    searches, chosen = search_lambda(
        evaluate,
        n,
        init=cfg.lambda_init,
        factor=cfg.lambda_factor,
        max_bracket_steps=cfg.max_bracket_steps,
        bisection_steps=cfg.bisection_steps,
        tolerance=cfg.tolerance,
        on_round=on_round,
    )
    search_reporter(1, 1, "done")
    seconds = (time.time() - t0) / n
    layout = getattr(G, "style_layout", None)
    scale = ranges.std if ranges is not None else None
    label = str(getattr(C, "target", "label"))
    results = []
    for i in range(n):
        s_final, image, frames = chosen[i]
        path = stack_frames(frames)
        with torch.no_grad():
            p_path = torch.sigmoid(classifier_logit(C, path.to(device))).cpu()
        kind = "prototype" if bool(prototype[i]) else "criticism"
        search = searches[i]
        details = {
            "latent_space": "S",
            "kind": kind,
            "lambda": search.lam if search.reached else None,
            "lambda_lower": search.lower,
            "lambda_tried_max": max(t["lambda"] for t in search.trials),
            "reached_goal": search.reached,
            "confidence_goal": float(goal[i]),
            "lambda_trials": search.trials,
            "style_change_l2": float((s_final - s0[i].cpu()).norm()),
            "top_changed_styles": top_changed_styles(
                s0[i].cpu(), s_final, layout=layout, scale=scale, k=cfg.top_k
            ),
            "top_changed_scale": "style std over random samples" if scale is not None else "raw",
        }
        results.append(
            CounterfactualResult(
                method="gci",
                kind=kind,
                target=int(tg[i]),
                label=label,
                query=x[i].cpu(),
                counterfactual=image,
                probability=float(p_path[-1]),
                query_probability=float(p_query[i]),
                reconstruction=recon[i].cpu(),
                reconstruction_probability=float(p_recon[i]),
                path=path,
                path_probabilities=p_path.tolist(),
                parameters={**asdict(cfg), "styles_given": styles is not None},
                details=details,
                seconds=seconds,
            )
        )
    return results


class _StepMessages:
    """A step reporter that adds a fixed message (``optimise_styles`` reports bare step counts)."""

    def __init__(self, reporter: Reporter, message: str):
        self.reporter = reporter
        self.message = message

    def check(self) -> None:
        self.reporter.check()

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.reporter(done, total, f"{self.message}, step {done}/{total}")
