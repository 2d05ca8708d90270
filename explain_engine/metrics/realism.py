"""How real an image looks to a StyleGAN2 discriminator.

The discriminator's minibatch-stddev layer mixes the images of a group; ``one_image_per_group`` makes each
image its own group, so that one image's score (or realism loss) does not depend on the others in its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class one_image_per_group:  # noqa: N801 - used as a context manager, named like one
    """Within the block, the minibatch-stddev layer of ``D`` (``D.b4.mbstd``) sees each image as its own
    group; its group size is restored on exit. A no-op when ``D`` is None or has no such layer."""

    def __init__(self, D):
        self.layer = getattr(getattr(D, "b4", None), "mbstd", None) if D is not None else None
        self.saved = None

    def __enter__(self):
        if self.layer is not None:
            self.saved = self.layer.group_size
            self.layer.group_size = 1
        return self

    def __exit__(self, *exc):
        if self.layer is not None:
            self.layer.group_size = self.saved


def discriminator_logit(D, images: torch.Tensor) -> torch.Tensor:
    """D's score ``[N]`` (higher = more real) for images ``[N, C, H, W]`` in [-1, 1], resized (bilinear,
    antialiased) to D's resolution when they differ, and moved to D's device. Differentiable w.r.t.
    ``images``."""
    res = getattr(D, "img_resolution", None)
    if res is not None and tuple(images.shape[-2:]) != (res, res):
        images = F.interpolate(
            images, size=(res, res), mode="bilinear", align_corners=False, antialias=images.shape[-1] > res
        )
    param = next(D.parameters(), None) if isinstance(D, torch.nn.Module) else None
    if param is not None:
        images = images.to(param.device)
    with one_image_per_group(D):
        return D(images).flatten()
