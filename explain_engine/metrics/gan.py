"""Quality of a generator against real images, in the feature space of a classifier.

* KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
  averaged over random subsets; 0 when the two feature distributions agree.
* FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the two feature sets.
* Precision and recall (Kynkaanniemi et al. 2019): the fraction of generated samples inside the k-NN manifold of
  the real features (precision: realism) and of real samples inside the manifold of the generated ones (recall:
  coverage), k = 3.

Features come from the demo classifier (its globally pooled last block), not from an ImageNet Inception network:
nothing is downloaded, and the classifier has seen chest radiograph phantoms. Numbers are therefore comparable
only between runs that use the same feature network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..device import module_device
from ..images import to_uint8
from .fid import fid as frechet_fid


@dataclass
class GanQuality:
    kid: float
    kid_std: float
    fid: float
    precision: float
    recall: float
    num_real: int
    num_fake: int
    feature_layer: str

    def as_dict(self) -> dict:
        return asdict(self)


def kid(
    real: np.ndarray, fake: np.ndarray, *, subsets: int = 50, subset_size: int = 500, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 estimate with the cubic polynomial kernel over random subsets."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    vals = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        y = fake[rng.choice(len(fake), m, replace=False)].astype(np.float64)
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the two feature sets [N, d] (``metrics.fid.fid``)."""
    return frechet_fid(real, fake)


def _knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    d = np.sqrt(np.maximum(((feats[:, None] - feats[None]) ** 2).sum(-1), 0))
    return np.sort(d, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-NN manifolds (Kynkaanniemi et al. 2019)."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = np.sqrt(np.maximum(((fake[:, None] - real[None]) ** 2).sum(-1), 0))  # [fake, real]
    precision = float((d <= r_real[None]).any(1).mean())
    recall = float((d.T <= r_fake[None]).any(1).mean())
    return precision, recall


@torch.no_grad()
def classifier_features(
    classifier, images: torch.Tensor, *, layer: str | None = None, batch_size: int = 128
) -> tuple[np.ndarray, str]:
    """Globally average-pooled features [N, C] of one classifier layer (default: the deepest spatial layer
    among the classifier's default feature layers)."""
    if layer is None:
        default = classifier.features(images[:2])
        spatial = [name for name, f in default.items() if f.ndim == 4]
        if not spatial:
            raise ValueError("the classifier exposes no spatial feature layers")
        layer = spatial[-1]
    out = []
    for i in range(0, len(images), batch_size):
        f = classifier.features(images[i : i + batch_size], [layer])[layer]
        out.append((f.mean(dim=[2, 3]) if f.ndim == 4 else f).float().cpu())
    return torch.cat(out).numpy(), layer


@torch.no_grad()
def generate_images(
    G, n: int, *, seed: int = 0, batch_size: int = 64, truncation_psi: float = 1.0
) -> torch.Tensor:
    """``n`` random images [n, C, H, W] in [-1, 1] with fixed noise."""
    gen = torch.Generator().manual_seed(seed)
    device = module_device(G)
    out = []
    for i in range(0, n, batch_size):
        z = torch.randn([min(batch_size, n - i), G.z_dim], generator=gen).to(device)
        out.append(G.synthesize(G.mapping(z, truncation_psi=truncation_psi), noise_mode="const").clamp(-1, 1))
    return torch.cat(out)


def sample_grid(
    G, real_images: torch.Tensor, *, columns: int = 8, fake_rows: int = 2, seed: int = 0, gap: int = 2
) -> np.ndarray:
    """A uint8 picture of ``fake_rows`` rows of ``G``'s samples (fixed noise, seed ``seed``) above one row of
    ``real_images`` [N, C, H, W] in [-1, 1], ``columns`` images per row, separated by ``gap`` white pixels."""
    if columns < 1 or fake_rows < 1:
        raise ValueError("columns and fake_rows must be at least 1")
    if len(real_images) < columns:
        raise ValueError(f"sample_grid needs {columns} real images, got {len(real_images)}")
    fake = generate_images(G, columns * fake_rows, seed=seed)
    tiles = list(fake) + list(real_images[:columns])
    h, w = tiles[0].shape[-2:]
    rows = fake_rows + 1
    grid = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = to_uint8(tile)
    return grid


def evaluate_generator(
    G,
    classifier,
    real_images: torch.Tensor,
    *,
    num_fake: int | None = None,
    seed: int = 0,
    progress_fn: Callable[[int, int, str], None] | None = None,
) -> GanQuality:
    """KID, FID, precision and recall of ``G`` against ``real_images`` [N, C, H, W] in [-1, 1]."""
    n_fake = num_fake or len(real_images)
    fake_images = generate_images(G, n_fake, seed=seed)
    if progress_fn:
        progress_fn(1, 3, "generated")
    real, layer = classifier_features(classifier, real_images)
    fake, _ = classifier_features(classifier, fake_images, layer=layer)
    if progress_fn:
        progress_fn(2, 3, "features")
    # subsets of half the smaller set, so the spread over subsets means something
    k_mean, k_std = kid(real, fake, subset_size=max(2, min(1000, len(real), len(fake)) // 2))
    p, r = precision_recall(real[:2000], fake[:2000])
    if progress_fn:
        progress_fn(3, 3, "done")
    return GanQuality(
        kid=k_mean,
        kid_std=k_std,
        fid=fid(real, fake),
        precision=p,
        recall=r,
        num_real=len(real),
        num_fake=len(fake),
        feature_layer=layer,
    )
