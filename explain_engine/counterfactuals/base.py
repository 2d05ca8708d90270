"""What every counterfactual method shares: the result type, targets, losses on the target class, progress.

Conventions
-----------
* Images are tensors ``[C, H, W]`` (one image) or ``[N, C, H, W]`` with values in ``[-1, 1]`` (-1 = black/air,
  +1 = white/dense), the generator's and the classifiers' range.
* The classifier returns the probability ``p`` of one label (e.g. "Pneumonia"). A *target* is a class of that
  binary decision: ``1`` = the label is present (``p >= 0.5``), ``0`` = absent. The probability of the target
  class is ``p`` for target 1 and ``1 - p`` for target 0; its log-odds are ``z`` and ``-z`` for the logit
  ``z``.
* A *criticism* asks for the other class than the classifier's decision on the query; a *prototype* asks for
  the same class with a higher confidence (papers/002). Saliency methods return an *attribution* instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..classifiers.base import classifier_logit
from ..device import module_device

__all__ = [
    "AbortFn",
    "ClampedInput",
    "ClassifierProbe",
    "CounterfactualError",
    "CounterfactualResult",
    "ProbeOutput",
    "ProgressFn",
    "Reporter",
    "as_image_batch",
    "classifier_logit",
    "confidence_goal",
    "default_layers",
    "evenly_spaced_steps",
    "feature_distance",
    "first_block_layer",
    "module_device",
    "resolve_target",
    "set_ramped_lr",
    "stack_frames",
    "styles_for",
    "synthesize",
    "target_cross_entropy",
    "target_log_odds",
    "target_probability",
]

ProgressFn = Callable[[int, int, str], None]
AbortFn = Callable[[], bool]

# Generator and prior outputs may overshoot [-1, 1] by more than the classifiers accept; what is shown and
# what is classified must be the same image, so every method clamps its images to the display range.
IMAGE_RANGE = (-1.0, 1.0)
# Values further outside than this are not images on the [-1, 1] scale at all (0..255, Hounsfield units, ...).
_RANGE_SLACK = 0.5


class CounterfactualError(ValueError):
    """A counterfactual cannot be produced as asked (bad input, a model the method needs is missing)."""


@dataclass
class CounterfactualResult:
    """One query image explained by one method.

    Attributes:
        method: the method's name (``"gci"``, ``"dip"``, ...).
        kind: ``"criticism"`` (target != the classifier's decision on the query), ``"prototype"`` (target ==
            that decision, more confidently) or ``"attribution"`` (saliency methods).
        target: the target class, 0 or 1 (1 = ``label`` present).
        label: the classifier's label (``classifier.target``, e.g. "Pneumonia").
        query: the query image ``[C, H, W]`` in [-1, 1].
        counterfactual: the counterfactual image ``[C, H, W]`` in [-1, 1] (the query for saliency methods).
        probability: classifier probability of ``label`` on the counterfactual.
        query_probability: classifier probability of ``label`` on the query.
        reconstruction: the method's rendering of the query before the edit (the generator's G(S0), the deep
            image prior's pre-image), ``[C, H, W]``, or None.
        reconstruction_probability: probability of ``label`` on the reconstruction, or None.
        path: the optimisation path ``[T, C, H, W]`` from the start to the counterfactual (frames for a GIF).
        path_probabilities: probability of ``label`` on every frame of ``path``, ``[T]``.
        heatmap: ``[H, W]`` in [0, 1] for saliency methods, else None.
        metrics: the figures of ``counterfactuals.metrics.counterfactual_metrics`` (filled by ``generate``).
        parameters: the settings used (JSON-serialisable).
        details: method-specific findings (JSON-serialisable), e.g. the lambda search or the changed styles.
        seconds: wall time of the method for this image (a batch's time is split evenly over its images).
    """

    method: str
    kind: str
    target: int
    label: str
    query: torch.Tensor
    counterfactual: torch.Tensor
    probability: float
    query_probability: float
    reconstruction: torch.Tensor | None = None
    reconstruction_probability: float | None = None
    path: torch.Tensor | None = None
    path_probabilities: list[float] = field(default_factory=list)
    heatmap: torch.Tensor | None = None
    metrics: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def target_probability(self) -> float:
        """Probability of the target class on the counterfactual."""
        return target_probability(self.probability, self.target)

    @property
    def reached_target(self) -> bool:
        """Whether the classifier decides for the target class on the counterfactual (threshold 0.5)."""
        return self.target_probability >= 0.5

    def summary(self) -> dict:
        """Everything but the images, as plain JSON-serialisable values."""
        return {
            "method": self.method,
            "kind": self.kind,
            "label": self.label,
            "target": self.target,
            "query_probability": self.query_probability,
            "reconstruction_probability": self.reconstruction_probability,
            "probability": self.probability,
            "target_probability": self.target_probability,
            "reached_target": self.reached_target,
            "path_probabilities": list(self.path_probabilities),
            "seconds": self.seconds,
            "metrics": self.metrics,
            "parameters": self.parameters,
            "details": self.details,
        }


# ------------------------------------------------------------------------------------------------------------
# Inputs


def as_image_batch(images: torch.Tensor, *, name: str = "image") -> torch.Tensor:
    """``[C, H, W]`` or ``[N, C, H, W]`` float images in [-1, 1] -> ``[N, C, H, W]`` float32 clamped to
    [-1, 1] (small overshoots, as generators make, are allowed).

    Raises ``CounterfactualError`` for anything else (wrong rank, integer dtype, values on another scale).
    """
    if not isinstance(images, torch.Tensor):
        raise CounterfactualError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise CounterfactualError(
            f"{name} must be [C, H, W] or [N, C, H, W], got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise CounterfactualError(f"{name} must be floating point in [-1, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise CounterfactualError(f"{name} contains NaN or infinite values")
    lo, hi = (float(v) for v in torch.aminmax(images))
    if lo < IMAGE_RANGE[0] - _RANGE_SLACK or hi > IMAGE_RANGE[1] + _RANGE_SLACK:
        raise CounterfactualError(
            f"{name} must be in [-1, 1] (-1 = black, +1 = white); got values in [{lo:.3g}, {hi:.3g}]"
        )
    return images.float().clamp(*IMAGE_RANGE)


def resolve_target(target: int | str, label: str) -> int:
    """The target class 0 or 1 from ``0``/``1``, ``"0"``/``"1"``, the label's name (-> 1), ``"no <label>"`` or
    ``"not <label>"`` (-> 0), ``"positive"`` (1) or ``"negative"`` (0); case-insensitive.

    Raises ``CounterfactualError`` naming the accepted spellings otherwise.
    """
    if isinstance(target, bool):
        target = int(target)
    if isinstance(target, int):
        if target in (0, 1):
            return target
    elif isinstance(target, str) and target.strip().lstrip("+-").isdigit():
        # A number is read as a number ("-1" is not "1" with a dash).
        if target.strip() in ("0", "1"):
            return int(target.strip())
    elif isinstance(target, str):
        t = " ".join(target.strip().lower().replace("_", " ").replace("-", " ").split())
        lab = " ".join(label.strip().lower().replace("_", " ").replace("-", " ").split())
        if t in ("1", "positive", lab):
            return 1
        if t in ("0", "negative", f"no {lab}", f"not {lab}"):
            return 0
    raise CounterfactualError(f"target must be 0, 1, {label!r} (= 1) or 'no {label}' (= 0); got {target!r}")


def target_probability(probability, target: int):
    """Probability of the target class from the probability of the label (a float or a tensor)."""
    return probability if target == 1 else 1 - probability


def target_log_odds(logit: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-odds ``[N]`` of each image's target class from the label's logit ``[N]`` and targets ``[N]``
    (0/1)."""
    return torch.where(targets.bool(), logit, -logit)


def target_cross_entropy(logit: torch.Tensor, targets: torch.Tensor, confidence=0.5) -> torch.Tensor:
    """Cross-entropy ``[N]`` toward the target class with the decision threshold moved to ``confidence``.

    ``-log sigmoid(z_t - logit(confidence))`` for the target log-odds ``z_t``: at ``confidence = 0.5`` the
    plain cross-entropy ``-log P(target)``. A higher ``confidence`` keeps a useful gradient until the target
    probability is above it, which is how the methods ask for "the target class with confidence q" without the
    soft-label cross-entropy's pull back to exactly q. ``confidence`` is a float or a tensor ``[N]``.
    """
    conf = torch.as_tensor(confidence, dtype=logit.dtype, device=logit.device).clamp(1e-6, 1 - 1e-6)
    return F.softplus(-(target_log_odds(logit, targets) - torch.logit(conf)))


def confidence_goal(
    pt_query: torch.Tensor, pt_reconstruction: torch.Tensor, *, confidence: float, prototype_confidence: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(prototype, p0, goal)`` per image from the target-class probabilities of the queries and of their
    reconstructions ``[N]``: a prototype (the classifier already decides for the target) must beat the larger
    of the two, ``goal = max(prototype_confidence, p0 + (1 - p0) / 2)``, or the unchanged image would do; a
    criticism's goal is ``confidence``."""
    prototype = pt_query >= 0.5
    p0 = torch.maximum(pt_query, pt_reconstruction)
    goal = torch.where(
        prototype,
        torch.clamp(
            torch.maximum(torch.full_like(p0, prototype_confidence), p0 + (1 - p0) / 2), max=1 - 1e-4
        ),
        torch.full_like(p0, confidence),
    )
    return prototype, p0, goal


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Relative squared distance ``||a - b||^2 / ||b||^2`` per image ``[N]`` between feature maps
    ``[N, ...]``.

    Dividing by the reference's energy makes the term scale-free, so that one weight works for any layer and
    the papers' loss weights keep their meaning across classifiers.
    """
    num = (a - b).square().flatten(1).sum(1)
    return num / b.detach().square().flatten(1).sum(1).clamp_min(1e-12)


class ClampedInput(torch.nn.Module):
    """A classifier that first clamps its input images to [-1, 1] (for code that calls the classifier on raw
    generator output, such as the style sweep). ``logit`` and ``features`` are forwarded likewise."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images.clamp(*IMAGE_RANGE))

    def logit(self, images: torch.Tensor) -> torch.Tensor:
        return classifier_logit(self.classifier, images.clamp(*IMAGE_RANGE))

    def features(self, images: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        return self.classifier.features(images.clamp(*IMAGE_RANGE), layers)

    def feature_layer_names(self) -> list[str]:
        names = getattr(self.classifier, "feature_layer_names", None)
        return names() if callable(names) else []


def evenly_spaced_steps(total_steps: int, frames: int) -> set[int]:
    """Step indices ``0 .. total_steps`` (inclusive) at which ``frames`` path frames are taken, first and last
    included."""
    if frames <= 1 or total_steps <= 0:
        return {total_steps}
    return {round(i * total_steps / (frames - 1)) for i in range(frames)}


def check_positive(**values: float) -> None:
    """Raise ``CounterfactualError`` naming every value that is not > 0 (config validation)."""
    bad = [f"{k}={v!r}" for k, v in values.items() if not (isinstance(v, int | float) and v > 0)]
    if bad:
        raise CounterfactualError(f"must be positive: {', '.join(bad)}")


def check_non_negative(**values: float) -> None:
    """Raise ``CounterfactualError`` naming every value that is negative or not a number."""
    bad = [f"{k}={v!r}" for k, v in values.items() if not (isinstance(v, int | float) and v >= 0)]
    if bad:
        raise CounterfactualError(f"must be >= 0: {', '.join(bad)}")


def check_probability(**values: float) -> None:
    """Raise ``CounterfactualError`` naming every value outside the open interval (0, 1)."""
    bad = [f"{k}={v!r}" for k, v in values.items() if not (isinstance(v, int | float) and 0 < v < 1)]
    if bad:
        raise CounterfactualError(f"must lie in (0, 1): {', '.join(bad)}")


# ------------------------------------------------------------------------------------------------------------
# Progress and cancellation


class Reporter:
    """Progress and cancellation for one ``generate`` call, shared by its phases.

    The caller's ``progress_fn(done, total, message)`` sees one monotone count from 0 to ``total``; each phase
    (projection, lambda search, ...) gets a slice of it through ``sub(start, stop)`` and reports in its own
    units. ``check()`` raises ``InterruptedError`` once ``abort_fn()`` is true.
    """

    def __init__(
        self,
        progress_fn: ProgressFn | None = None,
        abort_fn: AbortFn | None = None,
        *,
        what: str = "counterfactual",
        total: int = 1000,
        _span: tuple[float, float] = (0.0, 1.0),
    ):
        self.progress_fn = progress_fn
        self.abort_fn = abort_fn
        self.what = what
        self.total = total
        self.span = _span

    def sub(self, start: float, stop: float) -> Reporter:
        """A reporter for the fraction ``[start, stop]`` of this one's range."""
        a, b = self.span
        return Reporter(
            self.progress_fn,
            self.abort_fn,
            what=self.what,
            total=self.total,
            _span=(a + (b - a) * start, a + (b - a) * stop),
        )

    def check(self) -> None:
        """Raise ``InterruptedError`` when the caller asked to stop."""
        if self.abort_fn is not None and self.abort_fn():
            raise InterruptedError(f"{self.what} was cancelled")

    def __call__(self, done: float, total: float, message: str = "") -> None:
        """Report ``done`` of ``total`` units of this phase."""
        if self.progress_fn is None:
            return
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        a, b = self.span
        self.progress_fn(int(math.floor((a + (b - a) * frac) * self.total)), self.total, message)


def stack_frames(frames: Sequence[torch.Tensor]) -> torch.Tensor:
    """Frames ``[C, H, W]`` (or ``[1, C, H, W]``) -> ``[T, C, H, W]`` float32 on the CPU."""
    return torch.stack([f.detach().reshape(f.shape[-3:]).float().cpu() for f in frames])


# ------------------------------------------------------------------------------------------------------------
# StyleSpace


def styles_for(
    images: torch.Tensor,
    *,
    generator,
    classifier,
    discriminator=None,
    styles=None,
    ranges=None,
    projection_steps: int = 300,
    reporter: Reporter | None = None,
) -> torch.Tensor:
    """The StyleSpace vectors ``[N, D]`` of ``images`` ``[N, C, H, W]``: ``styles`` when given (validated),
    else the projection of papers/003 Eq. 2 (``projection.project_images`` for ``projection_steps`` steps,
    from ``ranges.mean`` when ranges are given, with the classifier and discriminator terms).

    Raises ``CounterfactualError`` when the images do not fit the generator or the styles do not fit either.
    """
    G = generator
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(images.shape[1:]) != expected:
        raise CounterfactualError(
            f"images must be [N, {expected[0]}, {expected[1]}, {expected[2]}] for this "
            f"generator, got {list(images.shape)}; resize them to its resolution first"
        )
    dims = G.style_layout.dims
    if styles is not None:
        styles = torch.as_tensor(styles).float()
        if styles.ndim == 1:
            styles = styles[None]
        if tuple(styles.shape) != (images.shape[0], dims):
            raise CounterfactualError(
                f"styles must be [N, D] = [{images.shape[0]}, {dims}] for these images and "
                f"this generator, got {list(styles.shape)}"
            )
        if not torch.isfinite(styles).all():
            raise CounterfactualError("styles contain NaN or infinite values")
        return styles.to(next(G.parameters()).device)
    from ..projection import ProjectionConfig, project_images

    if projection_steps < 1:
        raise CounterfactualError(
            f"projection_steps must be >= 1 when no styles are given, got {projection_steps}"
        )
    reporter = reporter or Reporter()
    res = project_images(
        images,
        G,
        classifier=ClampedInput(classifier),
        D=discriminator,
        init_styles=ranges.mean if ranges is not None else None,
        config=ProjectionConfig(steps=projection_steps),
        progress_fn=reporter,
        abort_fn=reporter.abort_fn,
    )
    return res.styles.to(next(G.parameters()).device)


def synthesize(generator, styles: torch.Tensor) -> torch.Tensor:
    """``G(S)`` ``[N, C, H, W]`` with constant noise, clamped to [-1, 1] (what is shown is what is
    classified)."""
    return generator.synthesize_from_styles(styles, noise_mode="const").clamp(*IMAGE_RANGE)


# ------------------------------------------------------------------------------------------------------------
# Reading a classifier's inside


def default_layers(classifier) -> list[str]:
    """The classifier's named feature layers (``default_feature_layers``), in network order; [] when it has
    none."""
    return list(getattr(classifier, "default_feature_layers", ()) or ())


def first_block_layer(classifier) -> str:
    """The classifier's first block: the first default feature layer named like a block ("blocks.0", "layer1",
    "features.denseblock1"), else its first default feature layer. Raises ``CounterfactualError`` when the
    classifier names no feature layers."""
    layers = default_layers(classifier)
    if not layers:
        raise CounterfactualError(
            f"{getattr(classifier, 'name', type(classifier).__name__)} names no feature "
            "layers (default_feature_layers); pass the layer to use"
        )
    for name in layers:
        if any("block" in part or part.startswith("layer") for part in name.split(".")):
            return name
    return layers[0]


@dataclass
class ProbeOutput:
    """One classifier pass: the label's logit ``[N]``, activations ``{layer: [N, ...]}`` and the loss estimate
    ``[N]`` (None when not asked for)."""

    logit: torch.Tensor
    features: dict[str, torch.Tensor]
    loss_estimate: torch.Tensor | None


class ClassifierProbe:
    """The label's logit, named activations and (optionally) the loss estimate of images in one forward pass.

    Activations are captured with forward hooks on the modules of ``classifier.network`` (or of the classifier
    itself when it has no ``network``), attached only during the call. A classifier with a loss-estimator head
    that offers ``logit_and_loss_estimate`` (the demo classifier) needs a single pass; one with only
    ``loss_estimate`` needs two.

    Raises ``CounterfactualError`` for unknown layer names (listing the known ones) and when a loss estimate
    is asked of a classifier without a loss-estimator head.
    """

    def __init__(self, classifier, layers: Sequence[str] = (), *, loss_estimate: bool = False):
        self.classifier = classifier
        self.layers = list(layers)
        root = getattr(classifier, "network", classifier)
        modules = dict(root.named_modules()) if isinstance(root, torch.nn.Module) else {}
        unknown = [name for name in self.layers if not name or name not in modules]
        if unknown:
            known = [name for name in modules if name]
            shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
            raise CounterfactualError(
                f"the classifier has no layer(s) {unknown}; available: {shown or 'none'}"
            )
        self.modules = {name: modules[name] for name in self.layers}
        if loss_estimate and not callable(getattr(classifier, "loss_estimate", None)):
            raise CounterfactualError(
                f"{getattr(classifier, 'name', type(classifier).__name__)} has no loss-estimator head "
                "(loss_estimate); the loss-estimator terms cannot be used with it"
            )
        self.want_loss = loss_estimate

    def __call__(self, images: torch.Tensor) -> ProbeOutput:
        captured: dict[str, torch.Tensor] = {}

        def hook_for(name: str):
            def hook(module, args, output):
                captured.setdefault(name, output)

            return hook

        handles = [m.register_forward_hook(hook_for(name)) for name, m in self.modules.items()]
        try:
            C = self.classifier
            loss = None
            if self.want_loss and callable(getattr(C, "logit_and_loss_estimate", None)):
                logit, loss = C.logit_and_loss_estimate(images)
            else:
                logit = classifier_logit(C, images)
                if self.want_loss:
                    loss = C.loss_estimate(images)
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name in self.layers if name not in captured]
        if missing:
            raise CounterfactualError(f"layer(s) {missing} did not run in the classifier's forward pass")
        return ProbeOutput(
            logit=logit, features={name: captured[name] for name in self.layers}, loss_estimate=loss
        )


def set_ramped_lr(optimizer: torch.optim.Optimizer, lr: float, step: int, ramp_steps: int) -> float:
    """Set the learning rate of step ``step`` (0-based) of a linear ramp from ``lr / ramp_steps`` to ``lr`` over
    ``ramp_steps`` steps (constant ``lr`` after it, or when ``ramp_steps`` is 0); returns it.

    Why: when an edit starts from a fitted image, the consistency terms sit at their minimum and only the
    counterfactual term has a gradient; Adam's first updates, about ``lr`` per weight in the direction of its
    sign, would then change the whole image at once instead of gradually.
    """
    value = lr * min(1.0, (step + 1) / ramp_steps) if ramp_steps > 0 else lr
    for group in optimizer.param_groups:
        group["lr"] = value
    return value
