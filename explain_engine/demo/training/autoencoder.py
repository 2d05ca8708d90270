"""Training the demo autoencoder (Latent Shift's latent space) on phantoms.

The autoencoder learns to reconstruct the GAN's training phantoms (the same stream, so that the two generative
models of the demo saw the same data) with an L1 loss plus a small SSIM term, by AdamW with a cosine schedule.
Checkpoints are written with ``checkpoints.save_networks`` (network ``AE``) and carry their training config and
measured metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ...autoencoder import ImageAutoencoder
from ...checkpoints import save_networks
from ...metrics.fidelity import psnr, ssim
from ..phantoms import PhantomDataset
from .classifier import phantom_tensor

__all__ = ["AutoencoderTrainingConfig", "evaluate_autoencoder", "train_autoencoder"]

ProgressFn = Callable[[int, int, str], None]


@dataclass
class AutoencoderTrainingConfig:
    """Settings of ``train_autoencoder`` (recorded in the checkpoint).

    Attributes:
        epochs: passes over the training phantoms.
        batch_size: images per step.
        learning_rate: peak AdamW learning rate (cosine decay to 1 % of it, 5 % linear warm-up).
        weight_decay: AdamW decoupled weight decay.
        ssim_weight: weight of ``1 - SSIM`` beside the L1 loss.
        seed: initialisation and batch order.
        threads: torch CPU threads during training; 0 leaves torch's setting alone.
        channels, latent_channels: the architecture (``ImageAutoencoder``).
    """

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    ssim_weight: float = 0.2
    seed: int = 0
    threads: int = 0
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    latent_channels: int = 8


def _lr_factor(step: int, total: int) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))


def evaluate_autoencoder(model: ImageAutoencoder, images: torch.Tensor, batch_size: int = 256) -> dict:
    """Median and mean PSNR (dB) and SSIM of the reconstructions of ``images`` ``[N, 1, H, W]`` in [-1, 1]."""
    device = next(model.parameters()).device
    ps, ss = [], []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            x = images[i : i + batch_size].to(device)
            r = model(x).clamp(-1, 1)
            ps.append(psnr(r, x).cpu())
            ss.append(ssim(r, x).cpu())
    p, s = torch.cat(ps), torch.cat(ss)
    return {
        "images": int(p.numel()),
        "psnr_median": float(p.median()),
        "psnr_mean": float(p.mean()),
        "ssim_median": float(s.median()),
        "ssim_mean": float(s.mean()),
    }


def train_autoencoder(
    train: PhantomDataset,
    val: PhantomDataset | None = None,
    *,
    config: AutoencoderTrainingConfig | None = None,
    out: str | Path | None = None,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
    metadata: dict | None = None,
) -> tuple[ImageAutoencoder, dict]:
    """Train an ``ImageAutoencoder`` on ``train`` (square phantoms) and evaluate it on ``val``.

    Returns ``(model, metrics)``; with ``out`` the checkpoint is written there (network ``AE``, metadata: the
    config, the metrics and ``metadata``). ``abort_fn()`` stops training early (the model so far is kept and
    the metrics say ``aborted``).
    """
    cfg = config or AutoencoderTrainingConfig()
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if len(train) < 2:
        raise ValueError(f"training needs at least 2 phantoms, got {len(train)}")
    previous_threads = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        start = time.time()
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        images = phantom_tensor(train)
        device = torch.device(device)
        model = ImageAutoencoder(
            img_resolution=images.shape[-1],
            img_channels=1,
            channels=cfg.channels,
            latent_channels=cfg.latent_channels,
        ).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        per_epoch = math.ceil(images.shape[0] / cfg.batch_size)
        total = cfg.epochs * per_epoch
        history, step, aborted = [], 0, False
        model.train()
        for epoch in range(cfg.epochs):
            order = torch.randperm(images.shape[0], generator=gen)
            sums = {"l1": 0.0, "ssim": 0.0}
            for b in range(per_epoch):
                if abort_fn is not None and abort_fn():
                    aborted = True
                    break
                x = images[order[b * cfg.batch_size : (b + 1) * cfg.batch_size]].to(device)
                for group in opt.param_groups:
                    group["lr"] = cfg.learning_rate * _lr_factor(step, total)
                r = model(x)
                l1 = F.l1_loss(r, x)
                s = ssim(r.clamp(-1, 1), x).mean()
                loss = l1 + cfg.ssim_weight * (1 - s)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums["l1"] += float(l1.detach())
                sums["ssim"] += float(s.detach())
                step += 1
                if progress_fn is not None:
                    progress_fn(step, total, f"epoch {epoch + 1}/{cfg.epochs} l1 {float(l1):.4f}")
            done = max(1, b + (0 if aborted else 1))
            history.append({"epoch": epoch + 1, "l1": sums["l1"] / done, "ssim": sums["ssim"] / done})
            if aborted:
                break
        model.eval().requires_grad_(False)
        metrics = {
            "config": asdict(cfg),
            "history": history,
            "steps": step,
            "aborted": aborted,
            "train_images": int(images.shape[0]),
            "wall_seconds": round(time.time() - start, 1),
        }
        if val is not None:
            metrics["val"] = evaluate_autoencoder(model, phantom_tensor(val))
        if out is not None:
            save_networks(out, {"AE": model.cpu()}, metadata={"metrics": metrics, **(metadata or {})})
            model.to(device)
        return model, metrics
    finally:
        torch.set_num_threads(previous_threads)
