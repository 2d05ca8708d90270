"""A convolutional autoencoder for radiographs: the latent space of the Latent Shift counterfactuals.

``ImageAutoencoder`` maps ``[N, C, H, W]`` images in [-1, 1] to a spatial latent ``[N, latent_channels, r, r]``
(``r = H / 2**len(channels)``) and back. It is a plain deterministic autoencoder (no variational term, no
quantisation): Latent Shift (Cohen et al. 2021) only needs a decoder whose outputs stay image-like when the
latent code is moved a little, and an encoder that puts a query near its reconstruction.

Encoder: a 3x3 stem, then per entry of ``channels`` a stride-2 3x3 conv and a 3x3 conv (GroupNorm, SiLU), then a
1x1 conv to ``latent_channels``. Decoder: the mirror image with nearest-neighbour up-sampling and a 3x3 conv to
the image channels. No output squashing: a ``tanh`` would flatten the gradient the shift follows near black and
white; images are clamped to [-1, 1] where they are shown or classified.

Checkpoints use the engine's own format (``checkpoints.save_networks`` / ``load_autoencoder``), never code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEMO_AUTOENCODER_PATH", "ImageAutoencoder"]

# The demo's autoencoder, trained on the GAN's phantoms (docs/demo-models.md).
DEMO_AUTOENCODER_PATH = Path(__file__).resolve().parent / "assets" / "demo" / "autoencoder.pt"


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 8), channels)


class _ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, stride, 1),
            _norm(c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
            _norm(c_out),
            nn.SiLU(),
        )


class ImageAutoencoder(nn.Module):
    """Images ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1] <-> latents ``[N, latent_channels,
    r, r]``.

    Args:
        img_resolution: side of the images (a multiple of ``2 ** len(channels)``).
        img_channels: 1 for radiographs.
        channels: widths of the down-sampling stages (each halves the side).
        latent_channels: channels of the spatial latent.
    """

    def __init__(
        self,
        img_resolution: int = 64,
        img_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        latent_channels: int = 8,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or img_resolution % (2 ** len(channels)):
            raise ValueError(
                f"img_resolution {img_resolution} must be a multiple of 2**{len(channels)} for "
                f"{len(channels)} down-sampling stages"
            )
        self.init_kwargs = {
            "img_resolution": int(img_resolution),
            "img_channels": int(img_channels),
            "channels": channels,
            "latent_channels": int(latent_channels),
        }
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.latent_resolution = self.img_resolution // 2 ** len(channels)
        self.latent_channels = int(latent_channels)
        self.stem = nn.Sequential(nn.Conv2d(img_channels, channels[0], 3, 1, 1), nn.SiLU())
        down, c_prev = [], channels[0]
        for c in channels:
            down.append(_ConvBlock(c_prev, c, stride=2))
            c_prev = c
        self.down = nn.Sequential(*down)
        self.to_latent = nn.Conv2d(c_prev, latent_channels, 1)
        self.from_latent = nn.Sequential(nn.Conv2d(latent_channels, c_prev, 3, 1, 1), nn.SiLU())
        up = []
        for c in reversed(channels):
            up.append(_ConvBlock(c_prev, c))
            c_prev = c
        self.up = nn.ModuleList(up)
        self.to_image = nn.Conv2d(c_prev, img_channels, 3, 1, 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_resolution, self.latent_resolution)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latents ``[N, latent_channels, r, r]`` of images ``[N, C, H, W]`` in [-1, 1]."""
        if tuple(images.shape[1:]) != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ValueError(
                f"images must be [N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}], "
                f"got {list(images.shape)}"
            )
        return self.to_latent(self.down(self.stem(images)))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images ``[N, C, H, W]`` (about [-1, 1], not clamped) of latents ``[N, latent_channels, r, r]``."""
        x = self.from_latent(latents)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.to_image(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``decode(encode(images))``."""
        return self.decode(self.encode(images))
