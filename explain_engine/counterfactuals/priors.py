"""Untrained image priors: networks whose structure, not their weights, regularises an inverse problem.

* ``DeepImagePriorUNet`` (Ulyanov et al. 2018, as used by papers/000): a U-Net with 4 down-sampling and 4
  up-sampling levels, skip connections and bilinear up-sampling, fed a fixed noise image. Fitting its weights
  to an objective reproduces natural image structure long before noise, which is what makes it a prior.
* ``FourierFeatureINR`` (Tancik et al. 2020): an implicit neural representation, a coordinate MLP
  ``(u, v) -> intensity`` on random Fourier features of the pixel coordinates; the bandwidth of the features
  (``scale``) sets how fine the detail it prefers is. One of the "stronger image priors" of DISC (papers/001).

Both are ``nn.Module``s whose ``forward()`` takes no argument and returns one image ``[1, C, H, W]`` in
(-1, 1) (a tanh output), so the methods can treat them alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import CounterfactualError

__all__ = ["DeepImagePriorUNet", "FourierFeatureINR", "build_prior"]

LEVELS = 4  # down- and up-sampling levels of the U-Net (papers/000, Section 4)


def _norm(channels: int) -> nn.GroupNorm:
    # The reference DIP uses BatchNorm on a batch of one image, i.e. per-channel statistics over pixels.
    # GroupNorm computes the same kind of statistics without train/eval differences, and with two channels per
    # group it still works at the 1 x 1 deepest level of small images, where per-channel statistics of one
    # value are 0.
    return nn.GroupNorm(max(1, channels // 2), channels)


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    # Replicate padding: zero padding would darken the borders, and reflection is undefined at 1 x 1.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, padding_mode="replicate"),
        _norm(c_out),
        nn.LeakyReLU(0.2),
    )


class DeepImagePriorUNet(nn.Module):
    """The deep image prior of papers/000: a U-Net on a fixed noise input.

    Structure (level i = 0..3, resolution H / 2**i at its input):

    * down i: conv3x3 stride 2 -> norm -> LeakyReLU -> conv3x3 -> norm -> LeakyReLU (``channels[i]`` out);
    * skip i: conv1x1 -> norm -> LeakyReLU on the level's input (``skip_channels`` out);
    * up i: bilinear x2 up-sampling of the level below, concatenated with skip i, -> conv3x3 -> norm ->
      LeakyReLU -> conv1x1 -> norm -> LeakyReLU (``channels[i]`` out);
    * head: conv1x1 -> tanh, ``out_channels`` in (-1, 1).

    Sizes that are not multiples of 16 are handled by drawing the noise at the next multiple of 16 and
    cropping the output.

    Args:
        size: ``(H, W)`` of the image to produce.
        out_channels: image channels.
        input_channels: channels of the fixed noise input (32 in the reference implementation).
        channels: channels of the four levels.
        skip_channels: channels of every skip connection (4 in the reference implementation).
        noise_scale: the noise input is uniform in ``[0, noise_scale)`` (0.1 in the reference implementation).
        seed: seed of the weights and of the noise input.
    """

    def __init__(
        self,
        size: tuple[int, int],
        *,
        out_channels: int = 1,
        input_channels: int = 32,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        skip_channels: int = 4,
        noise_scale: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        if len(channels) != LEVELS:
            raise CounterfactualError(f"channels must name {LEVELS} levels, got {tuple(channels)}")
        if min(size) < 1 or out_channels < 1 or input_channels < 1 or skip_channels < 1 or min(channels) < 1:
            raise CounterfactualError("sizes and channel counts of the deep image prior must be positive")
        self.size = (int(size[0]), int(size[1]))
        multiple = 2**LEVELS
        self.padded = tuple(math.ceil(s / multiple) * multiple for s in self.size)
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            c_prev = input_channels
            self.down, self.skip, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
            for c in channels:
                self.down.append(nn.Sequential(_conv_block(c_prev, c, 3, stride=2), _conv_block(c, c, 3)))
                self.skip.append(_conv_block(c_prev, skip_channels, 1))
                c_prev = c
            for i, c in enumerate(channels):
                deeper = channels[i + 1] if i + 1 < LEVELS else channels[-1]
                self.up.append(nn.Sequential(_conv_block(skip_channels + deeper, c, 3), _conv_block(c, c, 1)))
            self.head = nn.Conv2d(channels[0], out_channels, 1)
        noise = torch.rand(1, input_channels, *self.padded, generator=gen) * noise_scale
        self.register_buffer("noise", noise)

    def forward(self) -> torch.Tensor:
        """The image ``[1, out_channels, H, W]`` in (-1, 1)."""
        x = self.noise
        skips = []
        for down, skip in zip(self.down, self.skip, strict=True):
            skips.append(skip(x))
            x = down(x)
        for i in reversed(range(LEVELS)):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        out = torch.tanh(self.head(x))
        return out[..., : self.size[0], : self.size[1]]


class FourierFeatureINR(nn.Module):
    """An implicit neural representation of one image: an MLP on random Fourier features of pixel coordinates.

    ``gamma(p) = [sin(2 pi B p), cos(2 pi B p)]`` with ``p`` the pixel centre in [0, 1]^2 and ``B`` a fixed
    ``[num_frequencies, 2]`` matrix drawn from N(0, scale^2); then ``depth`` ReLU layers of ``hidden`` units
    and a linear layer with tanh to ``out_channels`` values in (-1, 1).

    Args:
        size: ``(H, W)`` of the image.
        out_channels: image channels.
        num_frequencies: rows of ``B``.
        scale: standard deviation of ``B`` in cycles per image side; higher = finer detail is easy to fit
            (Tancik et al. use 10 for natural images).
        hidden, depth: width and number of hidden layers.
        seed: seed of ``B`` and of the weights.
    """

    def __init__(
        self,
        size: tuple[int, int],
        *,
        out_channels: int = 1,
        num_frequencies: int = 128,
        scale: float = 10.0,
        hidden: int = 128,
        depth: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        if min(size) < 1 or num_frequencies < 1 or hidden < 1 or depth < 1 or scale <= 0:
            raise CounterfactualError(
                "size, num_frequencies, hidden, depth and scale of the INR must be positive"
            )
        self.size = (int(size[0]), int(size[1]))
        gen = torch.Generator().manual_seed(seed)
        ys = (torch.arange(self.size[0]) + 0.5) / self.size[0]
        xs = (torch.arange(self.size[1]) + 0.5) / self.size[1]
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
        self.register_buffer("coords", coords)
        self.register_buffer("frequencies", torch.randn(num_frequencies, 2, generator=gen) * scale)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers, width = [], 2 * num_frequencies
            for _ in range(depth):
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            layers.append(nn.Linear(width, out_channels))
            self.mlp = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self) -> torch.Tensor:
        """The image ``[1, out_channels, H, W]`` in (-1, 1)."""
        angles = 2 * math.pi * self.coords @ self.frequencies.t()
        out = torch.tanh(self.mlp(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)))
        return out.t().reshape(1, self.out_channels, *self.size)


def build_prior(kind: str, size: tuple[int, int], out_channels: int, *, seed: int = 0, **kwargs) -> nn.Module:
    """``"dip"`` -> ``DeepImagePriorUNet``, ``"inr"`` -> ``FourierFeatureINR``, with their keyword
    arguments."""
    if kind == "dip":
        return DeepImagePriorUNet(size, out_channels=out_channels, seed=seed, **kwargs)
    if kind == "inr":
        return FourierFeatureINR(size, out_channels=out_channels, seed=seed, **kwargs)
    raise CounterfactualError(f"unknown image prior {kind!r}; choose 'dip' or 'inr'")
