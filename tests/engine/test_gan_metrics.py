"""GAN quality measures on hand-made feature sets."""

import numpy as np
import pytest

from explain_engine.metrics.gan import fid, kid, precision_recall


def test_identical_distributions_score_as_identical():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 8))
    fake = rng.normal(size=(400, 8))
    k, _ = kid(real, fake, subsets=10, subset_size=200)
    assert abs(k) < 0.05
    assert fid(real, real) == pytest.approx(0.0, abs=1e-6)
    p, r = precision_recall(real, fake)
    assert p > 0.8 and r > 0.8


def test_a_shifted_generator_is_further_away_and_less_precise():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 8))
    shifted = rng.normal(loc=3.0, size=(300, 8))
    assert kid(real, shifted, subsets=10, subset_size=150)[0] > 1.0
    assert fid(real, shifted) == pytest.approx(72.0, rel=0.2)  # 8 dims x 3^2 plus sampling noise
    p, r = precision_recall(real, shifted)
    assert p < 0.2 and r < 0.2


def test_mode_collapse_keeps_precision_but_loses_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 4))
    collapsed = rng.normal(scale=0.1, size=(300, 4))
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.5


def test_sample_grid_puts_samples_above_the_real_row():
    import torch

    from explain_engine.metrics.gan import sample_grid
    from explain_engine.stylegan2 import Generator
    from tests.helpers.tiny import TINY_G

    torch.manual_seed(0)
    G = Generator(**TINY_G).eval()
    res = G.img_resolution
    real = torch.full((3, 1, res, res), 1.0)  # white tiles: 255 everywhere
    real[:, :, 0, 0] = -1.0  # one black pixel each
    grid = sample_grid(G, real, columns=3, fake_rows=2, gap=2)
    assert grid.dtype == np.uint8
    assert grid.shape == (3 * res + 4, 3 * res + 4)
    bottom = grid[2 * (res + 2) :, :]
    assert (bottom[0, [0, res + 2, 2 * (res + 2)]] == 0).all()  # the real row, in order
    assert (bottom[:, res : res + 2] == 255).all()  # the gap
    fake = grid[:res, :res]
    assert fake.std() > 0  # a generated picture, not a blank tile
    with pytest.raises(ValueError, match="needs 3 real images"):
        sample_grid(G, real[:2], columns=3)
