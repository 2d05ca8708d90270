"""Training of the demo StyleGAN2 on the CPU, resumable.

Losses follow StyleGAN2-ADA: the non-saturating logistic loss for G and D, lazy R1 regularisation of D on real
images (every ``r1_interval`` steps, scaled by the interval), an exponential moving average of G (``G_ema``) with
the half-life ramp-up of the reference configuration, style mixing, and an adaptive augmentation of the images
the discriminator sees (integer translation, brightness and contrast; no mirroring, since laterality matters in
a chest radiograph) whose probability ``p`` tracks the overfitting heuristic r_t = E[sign(D(real))] toward 0.6.
The path-length regulariser is left out: it costs a second generator backward pass and matters less for the
projection-based use made of the generator here.

State is checkpointed atomically every ``checkpoint_every_kimg`` to ``<out>/training-state.pt`` (networks,
optimisers, RNG, augmentation probability, step); ``train_gan`` resumes from it when present.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...checkpoints import network_record, save_networks
from ...files import atomic_torch_save
from ...stylegan2 import Discriminator, Generator, discriminator_kwargs, generator_kwargs

ProgressFn = Callable[[int, int, str], None]


@dataclass
class GanTrainingConfig:
    preset: str = "demo64"
    total_kimg: float = 200.0
    batch_size: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None  # None: 0.0002 * res^2 / batch, the reference's automatic choice
    r1_interval: int = 16
    ema_kimg: float | None = None  # None: batch * 10 / 32
    ema_rampup: float = 0.05
    style_mixing_prob: float = 0.9
    augment_target: float = 0.6
    augment_speed_kimg: float = 100.0  # p can move from 0 to 1 over this many kimg
    augment_interval: int = 4
    checkpoint_every_kimg: float = 4.0
    seed: int = 0
    threads: int = 0  # 0: leave torch's default
    overrides: dict = field(default_factory=dict)  # preset overrides (channel_base, ...)


def augment(images: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Random integer translation (up to 1/8 of the size, reflect padding), brightness and contrast, each applied
    to each image with probability ``p``. Differentiable w.r.t. ``images``."""
    if p <= 0:
        return images
    n, _, h, w = images.shape
    dev = images.device
    apply = (torch.rand([3, n], generator=gen) < p).to(dev)
    max_shift = max(1, h // 8)
    shifts = torch.randint(-max_shift, max_shift + 1, [n, 2], generator=gen).to(dev) * apply[0, :, None]
    pad = max_shift
    padded = F.pad(images, [pad, pad, pad, pad], mode="reflect")
    rows = torch.arange(h, device=dev)[None, :] + pad - shifts[:, :1]  # [n, h]
    cols = torch.arange(w, device=dev)[None, :] + pad - shifts[:, 1:]  # [n, w]
    out = padded[
        torch.arange(n, device=dev)[:, None, None, None],
        torch.arange(images.shape[1], device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    bright = torch.randn([n, 1, 1, 1], generator=gen).to(dev) * 0.2 * apply[1].view(-1, 1, 1, 1)
    out = out + bright
    mean = out.mean(dim=[1, 2, 3], keepdim=True)
    contrast = torch.exp2(torch.randn([n, 1, 1, 1], generator=gen).to(dev) * 0.5 * apply[2].view(-1, 1, 1, 1))
    return (out - mean) * contrast + mean


def _to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] or float [N, H, W] in [0, 1] -> float32 [N, 1, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.asarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return (x * 2 - 1).unsqueeze(1)


class GanTrainer:
    """Holds networks, optimisers and state; ``step()`` runs one minibatch of G and D updates."""

    def __init__(self, cfg: GanTrainingConfig, images: np.ndarray, *, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.data = _to_tensor_images(images).to(self.device)
        res = self.data.shape[-1]
        gk = generator_kwargs(cfg.preset, **cfg.overrides)
        if gk["img_resolution"] != res:
            raise ValueError(f"preset {cfg.preset} is {gk['img_resolution']}px but the images are {res}px")
        self.G = Generator(**gk).train().to(self.device)
        self.D = Discriminator(**discriminator_kwargs(cfg.preset, **cfg.overrides)).train().to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        mb_ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.g_lr, betas=cfg.betas)
        self.opt_D = torch.optim.Adam(
            self.D.parameters(), lr=cfg.d_lr * mb_ratio, betas=tuple(b**mb_ratio for b in cfg.betas)
        )
        self.r1_gamma = cfg.r1_gamma if cfg.r1_gamma is not None else 0.0002 * res**2 / cfg.batch_size
        self.step_idx = 0
        self.images_seen = 0
        self.augment_p = 0.0
        self._rt_acc: list[float] = []
        self.log: list[dict] = []

    # -- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "G": network_record(self.G),
            "D": network_record(self.D),
            "G_ema": network_record(self.G_ema),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "step": self.step_idx,
            "images_seen": self.images_seen,
            "augment_p": self.augment_p,
            "torch_rng": torch.get_rng_state(),
            "gen_rng": self.gen.get_state(),
            "log": self.log,
        }

    def load_state(self, st: dict) -> None:
        self.G.load_state_dict(st["G"]["state_dict"])
        self.D.load_state_dict(st["D"]["state_dict"])
        self.G_ema.load_state_dict(st["G_ema"]["state_dict"])
        self.opt_G.load_state_dict(st["opt_G"])
        self.opt_D.load_state_dict(st["opt_D"])
        self.step_idx = int(st["step"])
        self.images_seen = int(st["images_seen"])
        self.augment_p = float(st["augment_p"])
        torch.set_rng_state(st["torch_rng"])
        self.gen.set_state(st["gen_rng"])
        self.log = list(st.get("log", []))

    def load_networks(self, path: str | Path) -> None:
        """Start from the weights of a network file (G, G_ema, D); the optimisers start afresh."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        nets = data["networks"]
        self.G.load_state_dict(nets.get("G", nets["G_ema"])["state_dict"])
        self.G_ema.load_state_dict(nets["G_ema"]["state_dict"])
        self.D.load_state_dict(nets["D"]["state_dict"])
        self.images_seen = int(float(data.get("metadata", {}).get("kimg", 0)) * 1000)

    # -- training ------------------------------------------------------------------------------------------------
    def _latents(self, n: int) -> torch.Tensor:
        z = torch.randn([n, self.G.z_dim]).to(self.device)
        ws = self.G.mapping(z)
        if self.cfg.style_mixing_prob > 0:
            cutoff = torch.randint(1, ws.shape[1], [])
            if torch.rand([]) >= self.cfg.style_mixing_prob:
                cutoff = torch.tensor(ws.shape[1])
            ws2 = self.G.mapping(torch.randn(z.shape).to(self.device), skip_w_avg_update=True)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def _reals(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.data), [n], generator=self.gen)
        return self.data[idx]

    def step(self) -> dict:
        cfg, n = self.cfg, self.cfg.batch_size
        p = self.augment_p
        # G: non-saturating loss on fakes.
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        fake = self.G.synthesis(self._latents(n), noise_mode="random")
        loss_g = F.softplus(-self.D(augment(fake, p, self.gen))).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        # D: fakes down, reals up, lazy R1 on reals.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self.G.synthesis(self._latents(n), noise_mode="random")
        real = self._reals(n)
        do_r1 = self.step_idx % cfg.r1_interval == 0
        real_in = real.detach().requires_grad_(do_r1)
        logits_fake = self.D(augment(fake, p, self.gen))
        logits_real = self.D(augment(real_in, p, self.gen))
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        r1 = torch.zeros([], device=self.device)
        if do_r1:
            (grad,) = torch.autograd.grad(logits_real.sum(), real_in, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (self.r1_gamma / 2) * cfg.r1_interval
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()
        # EMA of G with ramp-up.
        ema_nimg = (cfg.ema_kimg if cfg.ema_kimg is not None else n * 10 / 32) * 1000
        ema_nimg = min(ema_nimg, self.images_seen * cfg.ema_rampup) if cfg.ema_rampup else ema_nimg
        beta = 0.5 ** (n / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, pg in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                pe.copy_(pg.lerp(pe, beta))
            for be, bg in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                be.copy_(bg)
        # Adaptive augmentation.
        self._rt_acc.append(float(torch.sign(logits_real.detach()).mean()))
        if (self.step_idx + 1) % cfg.augment_interval == 0:
            rt = float(np.mean(self._rt_acc))
            self._rt_acc.clear()
            adjust = (
                np.sign(rt - cfg.augment_target)
                * (n * cfg.augment_interval)
                / (cfg.augment_speed_kimg * 1000)
            )
            self.augment_p = float(min(max(self.augment_p + adjust, 0.0), 1.0))
        self.step_idx += 1
        self.images_seen += n
        return {
            "loss_g": float(loss_g.detach()),
            "loss_d": float(loss_d.detach()),
            "r1": float(r1.detach()),
            "real_logit": float(logits_real.detach().mean()),
            "fake_logit": float(logits_fake.detach().mean()),
        }


def train_gan(
    images: np.ndarray,
    out_dir: str | Path,
    cfg: GanTrainingConfig | None = None,
    *,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
    init_from: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Path:
    """Train (or resume training) the demo StyleGAN2 on ``images`` (uint8 [N, H, W]) until ``cfg.total_kimg``.

    Writes ``training-state.pt`` (resumable) and, at every checkpoint and at the end, ``network.pt`` with
    ``G``, ``G_ema`` and ``D`` in our checkpoint format. Returns the path of ``network.pt``. Stops early, after
    saving, when ``abort_fn()`` is true or ``max_seconds`` have passed. Without a training state in
    ``out_dir``, ``init_from`` (a network file with ``G``, ``G_ema`` and ``D``, e.g. the shipped demo networks)
    continues from those weights with fresh optimiser state, counting images from its ``kimg`` metadata.
    The networks train on ``device``; random draws stay on the CPU's generators, so a run resumes the same way
    wherever it continues.
    """
    cfg = cfg or GanTrainingConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path, net_path = out / "training-state.pt", out / "network.pt"
    trainer = GanTrainer(cfg, images, device=device)
    if state_path.exists():
        trainer.load_state(torch.load(state_path, map_location="cpu", weights_only=True))
    elif init_from is not None:
        trainer.load_networks(init_from)
    total = int(cfg.total_kimg * 1000)
    start_time, last_ckpt = time.time(), trainer.images_seen
    stats: list[dict] = []

    def checkpoint():
        atomic_torch_save(trainer.state(), state_path)
        save_networks(
            net_path,
            {"G": trainer.G, "G_ema": trainer.G_ema, "D": trainer.D},
            metadata={"kimg": trainer.images_seen / 1000, "preset": cfg.preset, "training": asdict(cfg)},
        )

    while trainer.images_seen < total:
        t0 = time.time()
        s = trainer.step()
        s["sec"] = time.time() - t0
        stats.append(s)
        if len(stats) >= 25 or trainer.images_seen >= total:
            mean = {k: float(np.mean([x[k] for x in stats])) for k in stats[0]}
            mean.update(kimg=trainer.images_seen / 1000, augment_p=trainer.augment_p)
            trainer.log.append(mean)
            rate = cfg.batch_size / max(mean["sec"], 1e-9)
            eta = (total - trainer.images_seen) / rate
            msg = (
                f"kimg {mean['kimg']:.2f}/{cfg.total_kimg:g}  img/s {rate:.1f}  loss_g {mean['loss_g']:.3f}  "
                f"loss_d {mean['loss_d']:.3f}  r1 {mean['r1']:.3f}  p {trainer.augment_p:.3f}  "
                f"eta {eta / 3600:.1f} h"
            )
            if progress_fn:
                progress_fn(trainer.images_seen, total, msg)
            stats.clear()
        if trainer.images_seen - last_ckpt >= cfg.checkpoint_every_kimg * 1000:
            checkpoint()
            last_ckpt = trainer.images_seen
        if (abort_fn and abort_fn()) or (max_seconds and time.time() - start_time > max_seconds):
            break
    checkpoint()
    return net_path
