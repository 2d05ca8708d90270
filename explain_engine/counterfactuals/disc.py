"""DISC: counterfactuals by deep model inversion with a strong image prior (papers/001).

The counterfactual x' is the output of an untrained image prior g_theta fitted, weights only, to

    lambda1 * sum_l d(F_l(x'), F_l(x)) + lambda2 * L_mc(x') + lambda3 * L_cf(F(x'), y')

the three ingredients the abstract names: (a) a stronger image prior than pixels, (b) a manifold-consistency
term, (c) progressive optimisation. The abstract leaves the details open; the choices made here:

* **Prior** (``prior``): ``"dip"``, the deep image prior U-Net of papers/000 (``priors.DeepImagePriorUNet``),
  or ``"inr"``, an implicit neural representation on random Fourier features (``priors.FourierFeatureINR``).
  Both are first fitted to the query's pixels (mean squared error, ``reconstruction_steps``): the inversion
  starts from the query rather than from noise, so that the counterfactual is an edit of it.
* **Feature consistency**: d = the relative squared distance ``||a - b||^2 / ||b||^2`` (scale-free, so one
  lambda1 fits every layer), summed over ``layers``: by default every named feature layer of the classifier
  but the last, whose features carry the decision that the counterfactual must change.
* **Manifold consistency** L_mc (``manifold``):

  - ``"loss_estimator"`` (default when the classifier has a loss-estimator head):
    ``relu(l_hat(x') - l_target)``, one-sided, since an estimated loss below the query's is no sign of
    leaving the data manifold, with l_target = l_hat(query) unless given;
  - ``"discriminator"`` (default when a StyleGAN2 discriminator is given and there is no estimator):
    ``softplus(-D(x'))``, the non-saturating realism loss;
  - ``"augmentation"`` (otherwise): the variance of the target log-odds over ``augmentations`` random small
    perturbations of x' (pixel noise and shifts of up to 2 pixels), an uncertainty estimate that needs no
    extra model: images off the manifold tend to sit where the classifier is unstable.

* **Counterfactual loss** L_cf: ``base.target_cross_entropy`` toward y' with the decision threshold at the
  stage's confidence q_k.
* **Progressive optimisation**: a schedule of rising target confidence ``confidence_schedule`` (default 0.5,
  0.7, 0.9); stage k runs at most ``stage_steps`` steps, warm-started from stage k-1's weights and optimiser
  state, and ends as soon as P(y' | x') >= q_k (the edit starts with a fresh optimiser whose learning rate
  ramps up over ``lr_rampup_steps``, so that it grows gradually from the reconstruction). A schedule of rising resolution was the alternative; confidence was chosen
  because it works the same for both priors and because the first stage then yields the minimal crossing of
  the decision boundary, the later ones a more convincing counterfactual. For a prototype (y' = the query's
  decision) the stages are raised above the query's confidence p0:
  q_k = max(q_k, p0 + (1 - p0) * k / (K + 1)) for k = 1..K.

The result is the image at the end of the last stage; ``details["stages"]`` records where every stage ended.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..metrics import fidelity
from ..metrics.realism import discriminator_logit
from ..params import check, param
from .base import (
    ClassifierProbe,
    CounterfactualError,
    CounterfactualResult,
    Reporter,
    check_non_negative,
    check_positive,
    check_probability,
    classifier_logit,
    default_layers,
    feature_distance,
    module_device,
    set_ramped_lr,
    stack_frames,
    target_cross_entropy,
    target_log_odds,
)
from .priors import build_prior

__all__ = ["DISCConfig", "MANIFOLD_TERMS", "run_disc"]

MANIFOLD_TERMS = ("loss_estimator", "discriminator", "augmentation")


@dataclass
class DISCConfig:
    """Settings of DISC.

    Attributes:
        prior: "dip" or "inr".
        layers: classifier layers of the feature-consistency term; None = all named feature layers but the
        last.
        feature_weight: lambda1.
        manifold_weight: lambda2.
        counterfactual_weight: lambda3.
        manifold: "loss_estimator", "discriminator" or "augmentation"; None = the first available in that
        order.
        loss_target: l_target of the loss-estimator term; None = the estimate on the query.
        confidence_schedule: the rising target confidences of the stages.
        reconstruction_steps: steps fitting the prior to the query's pixels.
        stage_steps: at most this many steps per stage.
        lr: Adam learning rate of the reconstruction; None = 0.01 for "dip", 0.001 for "inr".
        edit_lr: Adam learning rate of the stages; None = ``lr / 10``: every step changes all of the prior's
            weights, and at the reconstruction's rate a single step can carry the image far across the
            decision boundary.
        lr_rampup_steps: the learning rate ramps up linearly over this many steps at the start of the edit
            (``base.set_ramped_lr``), so that it grows gradually from the reconstruction.
        augmentations: perturbed copies per step for manifold="augmentation".
        dip_channels: the U-Net's level channels.
        inr_frequencies, inr_scale, inr_hidden, inr_depth: the Fourier-feature INR.
        path_frames: frames kept for the path (the reconstruction first, the counterfactual last).
        seed: seed of the prior and of the augmentations.
    """

    prior: str = param("dip", choices=("dip", "inr"))
    layers: tuple[str, ...] | None = param(None, max_length=64)
    feature_weight: float = param(1.0, min=0.0, max=1000.0)
    manifold_weight: float = param(0.1, min=0.0, max=1000.0)
    counterfactual_weight: float = param(1.0, min=0.0, max=1000.0)
    manifold: str | None = param(None, choices=MANIFOLD_TERMS)
    loss_target: float | None = param(None, min=-1e6, max=1e6)
    confidence_schedule: tuple[float, ...] = param((0.5, 0.7, 0.9), min=0.0, max=1.0, max_length=10)
    reconstruction_steps: int = param(300, min=0, max=10_000)
    stage_steps: int = param(200, min=1, max=10_000)
    lr: float | None = param(None, min=0.0, max=10.0)
    edit_lr: float | None = param(None, min=0.0, max=10.0)
    lr_rampup_steps: int = param(50, min=0, max=10_000)
    augmentations: int = param(4, min=1, max=64)
    dip_channels: tuple[int, ...] = param((16, 32, 64, 64), min=1, max=512, max_length=8)
    inr_frequencies: int = param(128, min=1, max=1024)
    inr_scale: float = param(10.0, min=0.0, max=1000.0)
    inr_hidden: int = param(128, min=1, max=1024)
    inr_depth: int = param(3, min=1, max=16)
    path_frames: int = param(16, min=1, max=200)
    seed: int = param(0, min=0, max=2**31 - 1)

    def __post_init__(self):
        check(self, CounterfactualError)
        if self.prior not in ("dip", "inr"):
            raise CounterfactualError(f"prior must be 'dip' or 'inr', got {self.prior!r}")
        if self.manifold is not None and self.manifold not in MANIFOLD_TERMS:
            raise CounterfactualError(
                f"manifold must be one of {MANIFOLD_TERMS} or None, got {self.manifold!r}"
            )
        self.confidence_schedule = tuple(float(q) for q in self.confidence_schedule)
        if not self.confidence_schedule:
            raise CounterfactualError("confidence_schedule needs at least one stage")
        check_probability(**{f"confidence_schedule[{k}]": q for k, q in enumerate(self.confidence_schedule)})
        if list(self.confidence_schedule) != sorted(self.confidence_schedule):
            raise CounterfactualError(f"confidence_schedule must rise, got {self.confidence_schedule}")
        if self.layers is not None:
            self.layers = tuple(self.layers)
        self.dip_channels = tuple(int(c) for c in self.dip_channels)
        check_positive(
            stage_steps=self.stage_steps, augmentations=self.augmentations, path_frames=self.path_frames
        )
        check_non_negative(
            feature_weight=self.feature_weight,
            manifold_weight=self.manifold_weight,
            counterfactual_weight=self.counterfactual_weight,
            reconstruction_steps=self.reconstruction_steps,
            lr_rampup_steps=self.lr_rampup_steps,
        )
        if self.lr is not None:
            check_positive(lr=self.lr)
        if self.edit_lr is not None:
            check_positive(edit_lr=self.edit_lr)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the prior's default."""
        return self.lr if self.lr is not None else (0.01 if self.prior == "dip" else 0.001)

    @property
    def edit_learning_rate(self) -> float:
        """``edit_lr``, or a tenth of ``learning_rate``."""
        return self.edit_lr if self.edit_lr is not None else self.learning_rate / 10


def _feature_layers(classifier, cfg: DISCConfig) -> list[str]:
    if cfg.layers is not None:
        return list(cfg.layers)
    layers = default_layers(classifier)
    if not layers:
        raise CounterfactualError(
            "the classifier names no feature layers (default_feature_layers); pass layers="
        )
    return layers[:-1] if len(layers) > 1 else layers


def _manifold_term(classifier, discriminator, cfg: DISCConfig) -> str:
    if cfg.manifold is not None:
        if cfg.manifold == "discriminator" and discriminator is None:
            raise CounterfactualError("manifold='discriminator' needs a discriminator")
        return cfg.manifold
    if callable(getattr(classifier, "loss_estimate", None)):
        return "loss_estimator"
    return "discriminator" if discriminator is not None else "augmentation"


def _augment(images: torch.Tensor, copies: int, gen: torch.Generator) -> torch.Tensor:
    """``copies`` perturbed versions of every image ``[N, C, H, W]`` -> ``[copies * N, C, H, W]``: Gaussian
    pixel noise (std 0.03 on the [-1, 1] scale) and a circular shift of up to 2 pixels in each direction."""
    out = []
    for _ in range(copies):
        dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
        noise = torch.randn(images.shape, generator=gen).to(images.device) * 0.03
        out.append(torch.roll(images, shifts=(dy, dx), dims=(-2, -1)) + noise)
    return torch.cat(out).clamp(-1, 1)


def run_disc(
    images: torch.Tensor,
    targets: Sequence[int],
    *,
    classifier,
    discriminator=None,
    config: DISCConfig | None = None,
    reporter: Reporter | None = None,
) -> list[CounterfactualResult]:
    """DISC counterfactuals for ``images`` ``[N, C, H, W]`` in [-1, 1], one prior per image.

    Args:
        images, targets: the queries and their target classes (0/1).
        classifier: the explained classifier.
        discriminator: optional StyleGAN2 discriminator for manifold="discriminator".
        config: ``DISCConfig``.
        reporter: progress and cancellation.

    Returns one ``CounterfactualResult`` per image; ``reconstruction`` is the prior fitted to the query.
    """
    cfg = config or DISCConfig()
    reporter = reporter or Reporter(what="disc")
    layers = _feature_layers(classifier, cfg)
    manifold = _manifold_term(classifier, discriminator, cfg)
    probe = ClassifierProbe(classifier, layers, loss_estimate=manifold == "loss_estimator")
    if discriminator is not None:
        discriminator.requires_grad_(False)
    device = module_device(classifier)
    label = str(getattr(classifier, "target", "label"))
    n = images.shape[0]
    return [
        _one_image(
            images[i : i + 1].to(device),
            int(targets[i]),
            probe,
            layers,
            manifold,
            discriminator,
            cfg,
            label,
            reporter.sub(i / n, (i + 1) / n),
            f"image {i + 1}/{n}",
        )
        for i in range(n)
    ]


def _one_image(x, target, probe, layers, manifold, D, cfg: DISCConfig, label, reporter: Reporter, where):
    t0 = time.time()
    tg = torch.tensor([target], device=x.device)
    with torch.no_grad():
        ref = probe(x)
    f_query = {name: f.detach() for name, f in ref.features.items()}
    p_query = float(torch.sigmoid(ref.logit)[0])
    pt_query = p_query if target == 1 else 1 - p_query
    l_target = None
    if manifold == "loss_estimator":
        l_target = float(cfg.loss_target) if cfg.loss_target is not None else float(ref.loss_estimate[0])
    schedule = list(cfg.confidence_schedule)
    if pt_query >= 0.5:  # a prototype: every stage must ask for more than the query already has
        k_total = len(schedule)
        schedule = [
            max(q, pt_query + (1 - pt_query) * (k + 1) / (k_total + 1)) for k, q in enumerate(schedule)
        ]
    kwargs = (
        {"channels": cfg.dip_channels}
        if cfg.prior == "dip"
        else {
            "num_frequencies": cfg.inr_frequencies,
            "scale": cfg.inr_scale,
            "hidden": cfg.inr_hidden,
            "depth": cfg.inr_depth,
        }
    )
    prior = build_prior(cfg.prior, tuple(x.shape[-2:]), x.shape[1], seed=cfg.seed, **kwargs).to(x.device)
    opt = torch.optim.Adam(prior.parameters(), lr=cfg.learning_rate)
    gen = torch.Generator().manual_seed(cfg.seed)
    total = cfg.reconstruction_steps + len(schedule) * cfg.stage_steps
    done = 0

    # Stage 0: the prior learns to draw the query.
    for step in range(cfg.reconstruction_steps):
        reporter.check()
        loss = (prior() - x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
        if step % 10 == 0:
            reporter(done, total, f"{where}: reconstruction, step {step + 1}/{cfg.reconstruction_steps}")
    with torch.no_grad():
        reconstruction = prior().detach()
        rec_probe = probe(reconstruction)

    def objective(out: torch.Tensor, q: float):
        p = probe(out)
        terms = {
            "feature": cfg.feature_weight
            * sum(feature_distance(p.features[name], f_query[name]) for name in layers)
        }
        if manifold == "loss_estimator":
            mc = F.relu(p.loss_estimate - l_target)
        elif manifold == "discriminator":
            mc = F.softplus(-discriminator_logit(D, out))
        else:
            copies = _augment(out, cfg.augmentations, gen)
            z = target_log_odds(classifier_logit(probe.classifier, copies), tg.repeat(cfg.augmentations))
            mc = z.reshape(cfg.augmentations, -1).var(dim=0, unbiased=False)
        terms["manifold"] = cfg.manifold_weight * mc
        terms["counterfactual"] = cfg.counterfactual_weight * target_cross_entropy(p.logit, tg, q)
        return sum(terms.values()), terms, p

    frames = [reconstruction[0].cpu()]
    stages = []
    frame_every = max(1, (len(schedule) * cfg.stage_steps) // max(cfg.path_frames - 2, 1))
    counter = 0
    out = reconstruction
    # The edit gets a new optimiser: moment estimates of the reconstruction (tiny gradients near convergence)
    # would make its first steps huge jumps. The stages share it, since only their threshold differs.
    opt = torch.optim.Adam(prior.parameters(), lr=cfg.edit_learning_rate)
    for k, q in enumerate(schedule):
        reached = False
        updates = 0
        for step in range(cfg.stage_steps):
            reporter.check()
            out = prior()
            loss, terms, p = objective(out, q)
            pt = float(torch.sigmoid(target_log_odds(p.logit.detach(), tg))[0])
            if pt >= q:  # the current image already satisfies this stage: keep it, do not update
                reached = True
                break
            set_ramped_lr(opt, cfg.edit_learning_rate, counter, cfg.lr_rampup_steps)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            updates += 1
            counter += 1
            if counter % frame_every == 0:
                frames.append(out.detach()[0].cpu())
            done += 1
            if step % 10 == 0:
                reporter(
                    done,
                    total,
                    f"{where}: stage {k + 1}/{len(schedule)} (confidence {q:.2f}), "
                    f"step {step + 1}/{cfg.stage_steps}, P(target) {pt:.3f}",
                )
        else:
            with torch.no_grad():
                out = prior()
                _, terms, p = objective(out, q)
                pt = float(torch.sigmoid(target_log_odds(p.logit, tg))[0])
                reached = pt >= q
        done = cfg.reconstruction_steps + (k + 1) * cfg.stage_steps
        stages.append(
            {
                "confidence": q,
                "steps": updates,
                "reached": reached,
                "target_probability": pt,
                **{name: float(v.detach().sum()) for name, v in terms.items()},
            }
        )
    counterfactual = out.detach()
    frames.append(counterfactual[0].cpu())
    if len(frames) > cfg.path_frames:
        keep = (
            sorted({round(i * (len(frames) - 1) / (cfg.path_frames - 1)) for i in range(cfg.path_frames)})
            if cfg.path_frames > 1
            else [len(frames) - 1]
        )
        frames = [frames[i] for i in keep]
    path = stack_frames(frames)
    with torch.no_grad():
        p_path = torch.sigmoid(probe(path.to(x.device)).logit).cpu()
        final = probe(counterfactual)
    reporter(total, total, f"{where}: done")
    kind = "prototype" if pt_query >= 0.5 else "criticism"
    details = {
        "prior": cfg.prior,
        "layers": layers,
        "manifold": manifold,
        "loss_target": l_target,
        "schedule": schedule,
        "stages": stages,
        "reconstruction_psnr": float(fidelity.psnr(reconstruction, x)[0]),
    }
    if final.loss_estimate is not None:
        details["loss_estimate_reconstruction"] = float(rec_probe.loss_estimate[0])
        details["loss_estimate_counterfactual"] = float(final.loss_estimate[0])
    return CounterfactualResult(
        method="disc",
        kind=kind,
        target=target,
        label=label,
        query=x[0].cpu(),
        counterfactual=counterfactual[0].cpu(),
        probability=float(torch.sigmoid(final.logit)[0]),
        query_probability=p_query,
        reconstruction=reconstruction[0].cpu(),
        reconstruction_probability=float(torch.sigmoid(rec_probe.logit)[0]),
        path=path,
        path_probabilities=p_path.tolist(),
        parameters={**asdict(cfg), "layers": layers, "manifold": manifold},
        details=details,
        seconds=time.time() - t0,
    )
