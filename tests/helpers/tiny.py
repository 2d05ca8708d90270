"""Tiny StyleGAN2 configurations for fast tests on the CPU (16x16, one channel, a few hundred style dims)."""

from __future__ import annotations

import torch

from explain_engine.stylegan2 import Discriminator, Generator

TINY_G = dict(
    z_dim=16,
    c_dim=0,
    w_dim=16,
    img_resolution=16,
    img_channels=1,
    mapping_kwargs=dict(num_layers=2),
    synthesis_kwargs=dict(channel_base=128, channel_max=16),
)
TINY_D = dict(c_dim=0, img_resolution=16, img_channels=1, channel_base=128, channel_max=16)


def tiny_generator(
    *,
    seed: int = 0,
    noise_strength: float | None = None,
    bias_std: float | None = None,
    **synthesis_overrides,
) -> Generator:
    """A tiny generator in eval mode. ``noise_strength`` sets every noise input's strength (default: 0, as at
    initialisation) and ``bias_std`` draws every bias from N(0, bias_std) (default: 0), so tests can see them;
    ``synthesis_overrides`` change ``TINY_G``'s synthesis arguments."""
    torch.manual_seed(seed)
    kwargs = dict(TINY_G, synthesis_kwargs={**TINY_G["synthesis_kwargs"], **synthesis_overrides})
    G = Generator(**kwargs).eval()
    if noise_strength is not None or bias_std is not None:
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise_strength") and noise_strength is not None:
                    p.fill_(noise_strength)
                elif name.endswith("bias") and bias_std is not None:
                    p.normal_(0, bias_std)
    return G


def tiny_discriminator(*, seed: int = 0) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(**TINY_D).eval()
