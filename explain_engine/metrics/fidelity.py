"""Image similarity measures for reconstructions and counterfactuals.

Images are tensors [N, C, H, W] in the generator's range [-1, 1]; PSNR and SSIM are computed on the [0, 1] scale
(data range 1), per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the [0, 1] scale, [N]."""
    return (to_unit(a) - to_unit(b)).square().flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1), [N]; capped at 100 dB for identical images."""
    return (10 * torch.log10(1.0 / mse(a, b).clamp_min(1e-10))).clamp(max=100.0)


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: torch.Tensor, b: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, Gaussian window 11/1.5, K1=0.01, K2=0.03) per image, [N].

    Computed on the valid region (no padding), averaged over channels.
    """
    x, y = to_unit(a), to_unit(b)
    c = x.shape[1]
    window = min(window, x.shape[-1], x.shape[-2])
    w = _gaussian_window(window, sigma, x.device, x.dtype)[None, None].repeat(c, 1, 1, 1)

    def filt(t):
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def feature_distance(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> torch.Tensor:
    """An LPIPS-like distance without learned weights: channel-normalised features, squared difference,
    spatial mean, averaged over layers. [N]"""
    if not fa:
        raise ValueError("feature_distance needs at least one feature layer")
    total = None
    for name in fa:
        a, b = fa[name], fb[name]
        if a.ndim == 2:
            a, b = a[:, :, None, None], b[:, :, None, None]
        a = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
        d = (a - b).square().sum(1).flatten(1).mean(1)
        total = d if total is None else total + d
    assert total is not None  # fa is not empty
    return total / max(len(fa), 1)


LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def lpips_backbone_path(net: str = "alex") -> Path:
    """Where torchvision keeps the ImageNet backbone weights that the lpips package needs."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return hub / LPIPS_BACKBONE_FILES[net]


class PerceptualDistance(torch.nn.Module):
    """The perceptual term of the projection loss.

    Uses the ``lpips`` package (learned LPIPS) when its ImageNet backbone weights are already on disk (see
    ``lpips_backbone_path``); never downloads. Otherwise falls back to ``feature_distance`` on the given
    ``features_fn`` (typically the classifier's intermediate features). ``self.kind`` says which one is used:
    ``"lpips-alex"`` or ``"classifier-features"``.
    """

    def __init__(
        self,
        features_fn: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
        *,
        prefer_lpips: bool = True,
        net: str = "alex",
    ):
        super().__init__()
        self.lpips = None
        self.features_fn = features_fn
        if prefer_lpips and lpips_backbone_path(net).exists():
            try:
                import lpips

                self.lpips = lpips.LPIPS(net=net, verbose=False).eval().requires_grad_(False)
            except Exception:  # noqa: BLE001 - any failure to build LPIPS offline means: use the fallback
                self.lpips = None
        if self.lpips is None and features_fn is None:
            raise ValueError(
                "no LPIPS backbone on disk and no features_fn for the fallback perceptual distance"
            )
        self.kind = f"lpips-{net}" if self.lpips is not None else "classifier-features"

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, b_features: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Distance per image, [N]; inputs in [-1, 1]. ``b_features``: ``reference(b)``, computed once for a
        ``b`` that does not change (a projection's target), so its features are not computed again."""
        if self.lpips is not None:
            if a.shape[1] == 1:
                a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
            return self.lpips(a, b).flatten()
        # generated images can leave [-1, 1] slightly; classifier features expect the display range
        assert self.features_fn is not None
        fb = b_features if b_features is not None else self.features_fn(b.clamp(-1, 1))
        return feature_distance(self.features_fn(a.clamp(-1, 1)), fb)

    @torch.no_grad()
    def reference(self, b: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """The features of ``b`` for ``forward(a, b, b_features=...)``; None with LPIPS (which takes both
        images in one call)."""
        if self.lpips is not None:
            return None
        assert self.features_fn is not None
        return {name: f.detach() for name, f in self.features_fn(b.clamp(-1, 1)).items()}


def perceptual_kind_of(perceptual) -> str:
    """``"lpips-alex"``, ``"classifier-features"`` or ``"none"``."""
    return getattr(perceptual, "kind", "none") if perceptual is not None else "none"


def default_perceptual(classifier) -> PerceptualDistance | None:
    """LPIPS when its backbone is on disk, else the distance on the classifier's default feature layers; None
    when neither is available."""
    feats = getattr(classifier, "features", None)
    names = getattr(classifier, "feature_layer_names", None)
    if feats is not None and callable(names) and not names():
        feats = None
    try:
        return PerceptualDistance(feats)
    except ValueError:
        return None


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, mean, min and max of a list of numbers (NaN-free)."""
    v = sorted(float(x) for x in values if not math.isnan(float(x)))
    if not v:
        return {"median": float("nan"), "mean": float("nan"), "min": float("nan"), "max": float("nan")}
    mid = len(v) // 2
    med = v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
    return {"median": med, "mean": sum(v) / len(v), "min": v[0], "max": v[-1]}
