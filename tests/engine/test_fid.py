"""The Frechet distance and the split FID of counterfactuals, on hand-made feature sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from explain_engine.metrics.fid import (
    feature_statistics,
    fid,
    frechet_distance,
    split_fid,
    split_halves,
    split_pairings,
)


def _random_covariance(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_sets_are_at_distance_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    mu, sigma = feature_statistics(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_gaussians_with_one_covariance_are_apart_by_the_squared_mean_shift():
    rng = np.random.default_rng(1)
    sigma = _random_covariance(rng, 5)
    mu_a, mu_b = rng.normal(size=5), rng.normal(size=5)
    expected = float(((mu_a - mu_b) ** 2).sum())
    assert frechet_distance(mu_a, sigma, mu_b, sigma) == pytest.approx(expected, rel=1e-9)


def test_diagonal_gaussians_follow_the_closed_form():
    # For diagonal covariances, FID = |mu_a - mu_b|^2 + sum_i (s_a,i - s_b,i)^2 with s the standard deviations.
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    expected = 9.0 + 0.0 + 4.0 + (1.0 + 1.0 + 0.0)
    value = frechet_distance(mu_a, np.diag(std_a**2), mu_b, np.diag(std_b**2))
    assert value == pytest.approx(expected, rel=1e-12)


def test_shifted_samples_come_close_to_the_closed_form():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(4000, 8))
    shifted = rng.normal(loc=2.0, scale=1.0, size=(4000, 8))
    assert fid(real, shifted) == pytest.approx(8 * 2.0**2, rel=0.05)


def test_the_trace_term_matches_scipys_matrix_square_root():
    rng = np.random.default_rng(3)
    sa, sb = _random_covariance(rng, 7), _random_covariance(rng, 7)
    mu_a, mu_b = rng.normal(size=7), rng.normal(size=7)
    root = linalg.sqrtm(sa @ sb).real
    expected = float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(root))
    assert frechet_distance(mu_a, sa, mu_b, sb) == pytest.approx(expected, rel=1e-8)


def test_fewer_vectors_than_dimensions_give_a_finite_non_negative_value():
    # Singular covariances (rank < D), as with 25 counterfactuals in 64 dimensions.
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32))
    value = fid(a, b)
    assert np.isfinite(value) and value > 0
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)


def test_the_halves_cover_every_image_once_and_are_seeded():
    a, b = split_halves(11, seed=5)
    assert len(a) == 5 and len(b) == 6
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(11))
    assert not set(a.tolist()) & set(b.tolist())
    again = split_halves(11, seed=5)
    assert np.array_equal(a, again[0]) and np.array_equal(b, again[1])
    assert not np.array_equal(a, split_halves(11, seed=6)[0])


def test_the_split_never_pairs_an_image_with_its_own_counterfactual():
    pairings = split_pairings(50, seed=0)
    assert len(pairings) == 2
    for generated, real in pairings:
        assert not set(generated.tolist()) & set(real.tolist())
    # Between them the two pairings use every counterfactual and every real image once.
    assert sorted(np.concatenate([g for g, _ in pairings]).tolist()) == list(range(50))
    assert sorted(np.concatenate([r for _, r in pairings]).tolist()) == list(range(50))


def test_counterfactuals_equal_to_their_queries_score_as_the_real_reference():
    # If the counterfactuals were compared with their own queries they would score 0; the split compares them
    # with the other half, which is what fresh real images score too.
    rng = np.random.default_rng(6)
    real = rng.normal(size=(40, 4))
    result = split_fid(real.copy(), real, seed=0)
    assert result.reference > 0
    assert result.value == pytest.approx(result.reference, rel=1e-9)
    assert result.pairings[0] == pytest.approx(result.pairings[1], rel=1e-9)
    assert result.n == 40


def test_the_split_fid_averages_both_pairings_and_grows_with_a_shift():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(200, 3))
    near = real + rng.normal(scale=0.1, size=real.shape)
    far = real + 3.0
    a, b = split_halves(200, seed=1)
    far_result = split_fid(far, real, seed=1)
    assert far_result.value == pytest.approx(np.mean([fid(far[a], real[b]), fid(far[b], real[a])]))
    assert far_result.value > split_fid(near, real, seed=1).value + 20  # about 3 dims x 3^2 = 27
    assert far_result.reference == pytest.approx(fid(real[a], real[b]))


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="same"):
        split_fid(rng.normal(size=(10, 3)), rng.normal(size=(12, 3)))
    with pytest.raises(ValueError, match="dimension"):
        fid(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        fid(rng.normal(size=(1, 3)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fid(np.full((4, 2), np.nan), rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="at least 4"):
        split_halves(3)
