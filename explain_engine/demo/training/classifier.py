"""Training and evaluation of the demo classifier on phantoms, on the CPU.

Objective: binary cross-entropy for the pneumonia label plus ``ranking_weight`` times the loss-estimator
ranking loss (``pairwise_ranking_loss``, margin 1) on the per-sample cross-entropies of the same minibatch, as
in papers/000 and Yoo & Kweon (2019). AdamW with a one-cycle learning-rate schedule, then temperature scaling
on the validation set.

Both heads are trained together on every minibatch, but by default the ranking loss does not reach the
convolutional blocks (the loss head reads detached block outputs; Yoo & Kweon stop that gradient too, in the
last part of their schedule). With the gradient let through, the ranking loss dominated early training on the
phantoms and the classifier stayed near the shortcut-only solution (val AUROC 0.81 vs 0.91 after 3 epochs on
2000 phantoms); ``detach_loss_head=False`` restores the fully joint variant.

Augmentation is light and keeps anatomy where it is: small translations and magnifications (as a different
patient positioning would give) and brightness/contrast changes. No horizontal flips: laterality is part of a
chest radiograph (heart on the patient's left, the laterality marker), and a flipped film is not a plausible
film.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...metrics.classification import classification_metrics
from ..classifier import (
    DemoClassifier,
    DemoClassifierConfig,
    PlainCNNClassifier,
    PlainCNNConfig,
    architecture_name,
    build_demo_classifier,
    pairwise_ranking_loss,
)
from ..phantoms import PhantomDataset

__all__ = [
    "ClassifierTrainingConfig",
    "augment_radiographs",
    "evaluate_on_phantoms",
    "fit_temperature",
    "phantom_tensor",
    "train_classifier",
]

ProgressFn = Callable[[int, int, str], None]


@dataclass
class ClassifierTrainingConfig:
    """Optimisation settings of ``train_classifier`` (recorded in the checkpoint).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step (the ranking loss pairs its two halves).
        learning_rate: peak AdamW learning rate of the one-cycle schedule.
        weight_decay: AdamW decoupled weight decay.
        ranking_weight: weight of the loss-estimator ranking loss (1 in papers/000).
        ranking_margin: its margin (1 in papers/000).
        detach_loss_head: keep the ranking loss's gradient out of the convolutional blocks (see above).
        augment: apply ``augment_radiographs`` to training batches.
        max_shift: largest translation, as a fraction of the image side.
        max_zoom: largest relative magnification change.
        brightness: standard deviation of the added brightness offset, in [-1, 1] image units.
        contrast: standard deviation of the log contrast factor.
        calibrate: after training, fit a temperature on ``val`` (see ``fit_temperature``) and fold it into the
            classification head.
        seed: seed of initialisation, batch order and augmentation.
        threads: torch CPU threads during training; 0 leaves torch's setting alone.
        model: architecture of the classifier: a ``DemoClassifierConfig`` (the demo CNN with its loss-estimator
            head) or a ``PlainCNNConfig`` (no loss head: the ranking loss is left out).
    """

    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    ranking_weight: float = 1.0
    ranking_margin: float = 1.0
    detach_loss_head: bool = True
    augment: bool = True
    max_shift: float = 0.04
    max_zoom: float = 0.05
    brightness: float = 0.05
    contrast: float = 0.1
    calibrate: bool = True
    seed: int = 0
    threads: int = 0
    model: DemoClassifierConfig | PlainCNNConfig = field(default_factory=DemoClassifierConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = {"arch": architecture_name(self.model), **self.model.to_dict()}
        return d


def phantom_tensor(dataset: PhantomDataset) -> torch.Tensor:
    """Phantom images as generator-convention images: ``[N, 1, H, W]`` float32 in [-1, 1] (-1 = black)."""
    return torch.from_numpy(dataset.images_float()).unsqueeze(1) * 2.0 - 1.0


def augment_radiographs(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    max_shift: float = 0.04,
    max_zoom: float = 0.05,
    brightness: float = 0.05,
    contrast: float = 0.1,
) -> torch.Tensor:
    """Random translation, magnification, brightness and contrast of images ``[N, C, H, W]`` in [-1, 1].

    Shifts are uniform in ``+-max_shift`` of the side, magnification ``1 +- max_zoom``; pixels brought in from
    outside repeat the border. Brightness adds ``N(0, brightness)``, contrast scales about the image mean by
    ``exp(N(0, contrast))``. The result is clamped to [-1, 1]. Never mirrors.
    """
    n = images.shape[0]
    u = torch.rand(n, 3, generator=generator) * 2 - 1
    scale = 1.0 + max_zoom * u[:, 0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0 / scale
    theta[:, 1, 1] = 1.0 / scale
    theta[:, 0, 2] = 2.0 * max_shift * u[:, 1]  # affine_grid coordinates span 2 units per side
    theta[:, 1, 2] = 2.0 * max_shift * u[:, 2]
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    noise = torch.randn(n, 2, generator=generator).to(images)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    gain = torch.exp(contrast * noise[:, 0]).view(-1, 1, 1, 1)
    offset = (brightness * noise[:, 1]).view(-1, 1, 1, 1)
    return ((out - mean) * gain + mean + offset).clamp(-1.0, 1.0)


@torch.no_grad()
def _probabilities(
    model: DemoClassifier | PlainCNNClassifier, images: torch.Tensor, batch_size: int = 256
) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = [model(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out).cpu().numpy().astype(np.float64)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of ``sigmoid(logits / T)`` (temperature
    scaling, Guo et al. 2017).

    Dividing logits by one positive number leaves the ranking (AUROC) and the decision at logit 0 (accuracy
    at 0.5) unchanged and only makes the probabilities more or less extreme. The NLL is convex in 1/T, so a
    golden-section search over log T in [1/20, 20] finds the minimum.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    if z.shape != y.shape or z.ndim != 1 or z.numel() == 0:
        raise ValueError(
            f"logits and labels must both be [N] with N > 0; got {tuple(z.shape)}, {tuple(y.shape)}"
        )

    def nll(log_t: float) -> float:
        return float(F.binary_cross_entropy_with_logits(z / math.exp(log_t), y))

    lo, hi = -math.log(20.0), math.log(20.0)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2.0)


@torch.no_grad()
def _logits(
    model: DemoClassifier | PlainCNNClassifier, images: torch.Tensor, batch_size: int = 256
) -> np.ndarray:
    out = [model.logit(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out).cpu().numpy().astype(np.float64)


def evaluate_on_phantoms(model: DemoClassifier | PlainCNNClassifier, dataset: PhantomDataset) -> dict:
    """``classification_metrics`` of ``model`` on a phantom set, plus AUROC within shortcut strata.

    The extra keys ``auroc_shortcut_present`` / ``auroc_shortcut_absent`` (NaN when a stratum lacks a class)
    say how well the model separates the classes once the shortcut factor is held fixed.
    """
    probs = _probabilities(model, phantom_tensor(dataset))
    labels = dataset.labels.astype(np.int64)
    metrics = classification_metrics(labels, probs)
    present = dataset.shortcut_present
    for name, members in (("present", present), ("absent", ~present)):
        y, p = labels[members], probs[members]
        both = 0 < y.sum() < y.size
        metrics[f"auroc_shortcut_{name}"] = classification_metrics(y, p)["auroc"] if both else float("nan")
    return metrics


def train_classifier(
    train: PhantomDataset,
    val: PhantomDataset | None = None,
    *,
    epochs: int | None = None,
    config: ClassifierTrainingConfig | None = None,
    eval_sets: dict[str, PhantomDataset] | None = None,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[DemoClassifier | PlainCNNClassifier, dict]:
    """Train the demo classifier with its loss-estimator head (or the plain CNN of ``config.model``) on
    phantoms.

    Args:
        train: training phantoms (any square size; the model's ``input_size`` follows ``config.model``, and
            images of another size are resized by the model).
        val: held-out phantoms evaluated after every epoch and at the end (optional).
        epochs: overrides ``config.epochs``.
        config: optimisation and architecture settings (defaults: ``ClassifierTrainingConfig()``).
        eval_sets: more phantom sets evaluated once at the end, e.g. ``{"neutral": ..., "flipped": ...}``.
        progress_fn: called as ``progress_fn(step, total_steps, message)`` after every step.
        abort_fn: polled every step; when it returns True training stops and the model so far is returned.
        device: where the model trains (initialisation, batch order and augmentation are drawn on the CPU, so
            they do not depend on it); the model is returned there.

    Returns:
        ``(model, metrics)``: the model in eval mode and a JSON-ready dict with ``config``, ``history`` (one
        entry per epoch: mean losses, val AUROC), ``val`` and each ``eval_sets`` entry (see
        ``evaluate_on_phantoms``, after calibration), ``temperature`` (1 when not calibrated), ``steps``,
        ``epochs_completed``, ``aborted`` and ``wall_seconds``.
    """
    config = config or ClassifierTrainingConfig()
    if epochs is not None:
        config = ClassifierTrainingConfig(**{**config.__dict__, "epochs": int(epochs)})
    if config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {config.epochs}")
    if len(train) < 2:
        raise ValueError(f"training needs at least 2 phantoms, got {len(train)}")
    previous_threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        return _train(train, val, config, eval_sets or {}, progress_fn, abort_fn, torch.device(device))
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    train, val, config, eval_sets, progress_fn, abort_fn, device
) -> tuple[DemoClassifier | PlainCNNClassifier, dict]:
    start = time.time()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_demo_classifier(config.model).to(device)
    model.train()
    images = phantom_tensor(train)
    labels = torch.from_numpy(train.labels.astype(np.float32))
    n = images.shape[0]
    batch_size = min(config.batch_size, n)
    steps_per_epoch = n // batch_size  # drop the ragged last batch: the ranking loss wants full halves
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total_steps, pct_start=0.2
    )
    history: list[dict] = []
    step, aborted = 0, False
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        sums = {"ce": 0.0, "ranking": 0.0}
        for b in range(steps_per_epoch):
            index = order[b * batch_size : (b + 1) * batch_size]
            x, y = images[index], labels[index]
            if config.augment:
                x = augment_radiographs(
                    x,
                    generator,
                    max_shift=config.max_shift,
                    max_zoom=config.max_zoom,
                    brightness=config.brightness,
                    contrast=config.contrast,
                )
            x, y = x.to(device), y.to(device)
            if isinstance(model, DemoClassifier):
                logit, estimate = model.logit_and_loss_estimate(x, detach_loss_head=config.detach_loss_head)
                ce_each = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
                ranking = pairwise_ranking_loss(estimate, ce_each, margin=config.ranking_margin)
            else:  # no loss-estimator head
                logit = model.logit(x)
                ce_each = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
                ranking = ce_each.sum() * 0.0
            loss = ce_each.mean() + config.ranking_weight * ranking
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            ce_value, ranking_value = ce_each.mean().item(), ranking.item()
            sums["ce"] += ce_value
            sums["ranking"] += ranking_value
            if progress_fn:
                progress_fn(
                    step,
                    total_steps,
                    f"epoch {epoch + 1}/{config.epochs} ce {ce_value:.3f} ranking {ranking_value:.3f}",
                )
            if abort_fn and abort_fn():
                aborted = True
                break
        done = b + 1
        entry = {"epoch": epoch + 1, "ce": sums["ce"] / done, "ranking": sums["ranking"] / done}
        if val is not None:
            entry["val_auroc"] = evaluate_on_phantoms(model, val)["auroc"]
            model.train()
        history.append(entry)
        if progress_fn:
            text = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items())
            progress_fn(step, total_steps, text)
        if aborted:
            break
    model.eval()
    temperature = 1.0
    if config.calibrate and val is not None:
        temperature = fit_temperature(_logits(model, phantom_tensor(val)), val.labels)
        # Folding 1/T into the last linear layer keeps the network a plain logit producer for its users.
        with torch.no_grad():
            model.network.head.weight.div_(temperature)
            model.network.head.bias.div_(temperature)
    metrics: dict = {
        "config": config.to_dict(),
        "train_size": len(train),
        "steps": step,
        "epochs_completed": len(history) if not aborted else len(history) - 1,
        "aborted": aborted,
        "history": history,
        "temperature": temperature,
    }
    if val is not None:
        metrics["val"] = evaluate_on_phantoms(model, val)
    for name, dataset in eval_sets.items():
        metrics[name] = evaluate_on_phantoms(model, dataset)
    metrics["wall_seconds"] = round(time.time() - start, 1)
    model.metrics = _finite_or_none(metrics)
    return model, model.metrics


def _finite_or_none(obj):
    """NaN/inf -> None throughout, so the metrics are valid JSON and store in checkpoints as plain data."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj
