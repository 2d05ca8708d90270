"""Per-dimension statistics of StyleSpace over random generator samples (papers/003 Section 2.2).

The sweep clamps each style dimension to the minimum and maximum it takes over random samples; projection starts
from the mean style vector. ``estimate_style_ranges`` streams over batches of samples in constant memory: exact
min, max, mean and standard deviation (Chan's parallel update in float64), and percentiles from a uniform
reservoir of at most ``reservoir_size`` samples (exact when fewer samples than that are drawn).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .files import atomic_torch_save

RANGES_FORMAT = "explain-engine-style-ranges"


@dataclass
class StyleRanges:
    """Statistics of every style dimension, each a float32 tensor [D]."""

    minimum: torch.Tensor
    maximum: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    num_samples: int
    percentiles: dict[float, torch.Tensor] = field(default_factory=dict)
    truncation_psi: float = 1.0
    seed: int = 0

    @property
    def dims(self) -> int:
        return int(self.minimum.numel())

    def clamp_values(
        self, kind: str = "minmax", percentile: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) values [D] that the sweep clamps to: min/max, or the ``percentile`` and 100 - percentile."""
        if kind == "minmax":
            return self.minimum, self.maximum
        if kind == "percentile":
            if percentile is None:
                raise ValueError("kind='percentile' needs percentile=")
            lo, hi = float(percentile), float(100 - percentile)
            missing = [q for q in (lo, hi) if q not in self.percentiles]
            if missing:
                raise KeyError(
                    f"percentiles {missing} were not estimated; available: {sorted(self.percentiles)}"
                )
            return self.percentiles[lo], self.percentiles[hi]
        raise ValueError(f"unknown clamp kind {kind!r}: use 'minmax' or 'percentile'")

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_torch_save(
            {
                "format": RANGES_FORMAT,
                "version": 1,
                "minimum": self.minimum,
                "maximum": self.maximum,
                "mean": self.mean,
                "std": self.std,
                "num_samples": self.num_samples,
                "percentiles": {str(q): v for q, v in self.percentiles.items()},
                "truncation_psi": self.truncation_psi,
                "seed": self.seed,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> StyleRanges:
        path = Path(path)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"style ranges file not found: {path}") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear error
            raise ValueError(f"{path.name} is not a readable style-ranges file: {exc}") from None
        if not isinstance(d, dict) or d.get("format") != RANGES_FORMAT:
            raise ValueError(f"{path.name} is not a style-ranges file of this tool")
        return cls(
            minimum=d["minimum"],
            maximum=d["maximum"],
            mean=d["mean"],
            std=d["std"],
            num_samples=int(d["num_samples"]),
            percentiles={float(q): v for q, v in d["percentiles"].items()},
            truncation_psi=float(d["truncation_psi"]),
            seed=int(d["seed"]),
        )


class StreamingStats:
    """Exact running min/max/mean/variance per column and a uniform reservoir, fed batch by batch."""

    def __init__(self, dims: int, *, reservoir_size: int = 4096, seed: int = 0):
        self.n = 0
        self.minimum = torch.full([dims], float("inf"), dtype=torch.float64)
        self.maximum = torch.full([dims], float("-inf"), dtype=torch.float64)
        self.mean = torch.zeros(dims, dtype=torch.float64)
        self.m2 = torch.zeros(dims, dtype=torch.float64)
        self.reservoir_size = reservoir_size
        self.reservoir = torch.empty([0, dims], dtype=torch.float32)
        self._gen = torch.Generator().manual_seed(seed)

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64).cpu()
        nb = x.shape[0]
        if nb == 0:
            return
        self.minimum = torch.minimum(self.minimum, x.min(0).values)
        self.maximum = torch.maximum(self.maximum, x.max(0).values)
        mb = x.mean(0)
        m2b = (x - mb).square().sum(0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta.square() * (self.n * nb / n)
        self._reservoir_update(x.float())
        self.n = n

    def _reservoir_update(self, x: torch.Tensor) -> None:
        # Algorithm R, vectorised: sample t (0-based, global) replaces a random slot with prob k / (t + 1).
        k = self.reservoir_size
        take = max(0, min(k - self.reservoir.shape[0], x.shape[0]))
        if take:
            self.reservoir = torch.cat([self.reservoir, x[:take]])
        rest = x[take:]
        if rest.shape[0] == 0:
            return
        t = torch.arange(self.n + take, self.n + x.shape[0], dtype=torch.float64)
        slots = (torch.rand(rest.shape[0], generator=self._gen, dtype=torch.float64) * (t + 1)).long()
        keep = slots < k
        for row, slot in zip(rest[keep], slots[keep].tolist(), strict=True):
            self.reservoir[slot] = row

    @property
    def std(self) -> torch.Tensor:
        return (self.m2 / max(self.n - 1, 1)).sqrt()

    def percentiles(self, qs: Sequence[float]) -> dict[float, torch.Tensor]:
        if not qs:
            return {}
        q = torch.tensor([float(v) / 100 for v in qs], dtype=torch.float64)
        values = torch.quantile(self.reservoir.double(), q, dim=0)
        return {float(v): values[i].float() for i, v in enumerate(qs)}


@torch.no_grad()
def estimate_style_ranges(
    G,
    *,
    num_samples: int = 100_000,
    batch_size: int = 256,
    percentiles: Sequence[float] = (0.5, 1.0, 5.0, 95.0, 99.0, 99.5),
    truncation_psi: float = 1.0,
    seed: int = 0,
    reservoir_size: int = 4096,
    progress_fn: Callable[[int, int, str], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
) -> StyleRanges:
    """Sample ``num_samples`` random z, map them to styles S = A(w) and return per-dimension statistics.

    Memory is constant in ``num_samples``: O(D * (batch_size + reservoir_size)). Only the mapping network and the
    affine layers run (no image synthesis), so 100k samples take seconds to minutes on a CPU.
    Raises ``InterruptedError`` when ``abort_fn()`` becomes true.
    """
    if num_samples < 2:
        raise ValueError("num_samples must be at least 2")
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    stats = StreamingStats(G.style_layout.dims, reservoir_size=reservoir_size, seed=seed + 1)
    done = 0
    while done < num_samples:
        if abort_fn and abort_fn():
            raise InterruptedError("style range estimation was cancelled")
        n = min(batch_size, num_samples - done)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        c = torch.zeros([n, G.c_dim], device=device) if G.c_dim else None
        ws = G.mapping(z, c, truncation_psi=truncation_psi)
        stats.update(G.styles_from_w(ws))
        done += n
        if progress_fn:
            progress_fn(done, num_samples, f"{done} / {num_samples} samples")
    return StyleRanges(
        minimum=stats.minimum.float(),
        maximum=stats.maximum.float(),
        mean=stats.mean.float(),
        std=stats.std.float(),
        num_samples=stats.n,
        percentiles=stats.percentiles(percentiles),
        truncation_psi=truncation_psi,
        seed=seed,
    )
