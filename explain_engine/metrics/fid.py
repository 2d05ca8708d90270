"""Frechet distance between feature distributions (FID), and the split FID used for counterfactuals.

FID (Heusel et al. 2017) compares two sets of feature vectors through Gaussians fitted to them:

    FID = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

with mu the mean and S the covariance (unbiased, ``ddof=1``) of each set. The trace of the matrix square root
is computed as ``sum(sqrt(eig(S_a^(1/2) S_b S_a^(1/2))))``: that matrix is similar to ``S_a S_b``, symmetric
and positive semi-definite, so its eigenvalues are real and non-negative (tiny negative ones from rounding are
set to 0) and the result needs no complex arithmetic, also when the covariances are singular, as they are
when a set holds fewer vectors than dimensions.

**Split FID** for counterfactuals: a counterfactual stays close to its own query, so an FID between all
counterfactuals and all queries rewards methods that change little, not methods whose images look real. The
image indices are split into two halves A and B (a seeded permutation); the counterfactuals of A are compared
with the real images of B and those of B with the real images of A, and the two values are averaged, so no
counterfactual is ever compared with its own original. The same split of the real images against each other
(A against B) is the reference: the value a method would get if its counterfactuals were fresh real images.
With few images per half the estimate is biased upwards (a covariance from n vectors has rank < n); compare
methods with each other and with the reference, at the same n and feature layer, never with published FIDs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SplitFID",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "split_fid",
    "split_halves",
    "split_pairings",
]


def _as_features(features, name: str) -> np.ndarray:
    a = np.asarray(features, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be [N, D] feature vectors, got shape {a.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 feature vectors for a covariance, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of feature vectors ``[N, D]`` (N >= 2)."""
    a = _as_features(features, "features")
    mu = a.mean(axis=0)
    centred = a - mu
    sigma = centred.T @ centred / (a.shape[0] - 1)
    return mu, sigma


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues < 0 from rounding
    are treated as 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """The Frechet distance between the Gaussians N(mu_a, sigma_a) and N(mu_b, sigma_b) (see the module text).

    Args:
        mu_a, mu_b: means ``[D]``.
        sigma_a, sigma_b: covariances ``[D, D]``, symmetric positive semi-definite.
    """
    mu_a, mu_b = np.asarray(mu_a, dtype=np.float64), np.asarray(mu_b, dtype=np.float64)
    sigma_a, sigma_b = np.asarray(sigma_a, dtype=np.float64), np.asarray(sigma_b, dtype=np.float64)
    d = mu_a.shape[0]
    if mu_a.shape != (d,) or mu_b.shape != (d,) or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise ValueError(
            f"means must be [D] and covariances [D, D] of one D; got {mu_a.shape}, {sigma_a.shape}, "
            f"{mu_b.shape}, {sigma_b.shape}"
        )
    root_a = _sqrt_psd(sigma_a)
    middle = root_a @ sigma_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def fid(features_a, features_b) -> float:
    """FID between two sets of feature vectors ``[N_a, D]`` and ``[N_b, D]``."""
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def split_halves(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image indices ``0..n-1`` split at random (seeded) into halves A (``n // 2`` indices) and B (the rest),
    each sorted."""
    if n < 4:
        raise ValueError(f"a split FID needs at least 4 images (2 per half), got {n}")
    order = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return np.sort(order[:half]), np.sort(order[half:])


def split_pairings(n: int, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two comparisons of a split FID as ``(generated indices, real indices)``: (A, B) and (B, A)."""
    a, b = split_halves(n, seed=seed)
    return [(a, b), (b, a)]


@dataclass(frozen=True)
class SplitFID:
    """A split FID (see the module text).

    Attributes:
        value: the mean of the two pairings.
        pairings: FID of generated A vs real B, and of generated B vs real A.
        reference: FID of real A vs real B (the same split), the level of fresh real images.
        n: images (pairs of query and counterfactual).
    """

    value: float
    pairings: tuple[float, float]
    reference: float
    n: int


def split_fid(generated, real, *, seed: int = 0) -> SplitFID:
    """Split FID of ``generated[i]`` (e.g. the counterfactual of query i) against ``real[i]`` (the queries'),
    both feature sets ``[N, D]`` in the same order; no generated vector is compared with its own real one.
    """
    g = _as_features(generated, "generated")
    r = _as_features(real, "real")
    if g.shape != r.shape:
        raise ValueError(
            f"generated and real must pair up row by row (same [N, D]); got {g.shape} and {r.shape}"
        )
    (ga, rb), (gb, ra) = split_pairings(g.shape[0], seed=seed)
    pairings = (fid(g[ga], r[rb]), fid(g[gb], r[ra]))
    return SplitFID(
        value=float(np.mean(pairings)),
        pairings=pairings,
        reference=fid(r[ra], r[rb]),
        n=g.shape[0],
    )
