"""Style ranges: streamed statistics equal a brute-force computation over the same samples."""

import pytest
import torch

from explain_engine.ranges import StyleRanges, estimate_style_ranges
from explain_engine.stylegan2 import Generator
from tests.helpers.tiny import TINY_G


@pytest.fixture
def G():
    torch.manual_seed(0)
    return Generator(**TINY_G).eval()


def brute_force_styles(G, n, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            z = torch.randn([min(batch, n - start), G.z_dim], generator=gen)
            out.append(G.styles_from_w(G.mapping(z)))
    return torch.cat(out).double()


def test_streamed_ranges_match_brute_force(G):
    r = estimate_style_ranges(G, num_samples=1000, batch_size=96, seed=3, percentiles=(1.0, 50.0, 99.0))
    s = brute_force_styles(G, 1000, 96, seed=3)
    assert r.num_samples == 1000 and r.dims == G.style_layout.dims
    assert torch.allclose(r.minimum.double(), s.min(0).values, atol=1e-6)
    assert torch.allclose(r.maximum.double(), s.max(0).values, atol=1e-6)
    assert torch.allclose(r.mean.double(), s.mean(0), atol=1e-5)
    assert torch.allclose(r.std.double(), s.std(0), atol=1e-5)
    # fewer samples than the reservoir holds: percentiles are exact
    assert torch.allclose(r.percentiles[50.0].double(), torch.quantile(s, 0.5, dim=0), atol=1e-5)


def test_percentiles_from_the_reservoir_are_close_when_samples_exceed_it(G):
    r = estimate_style_ranges(G, num_samples=3000, batch_size=500, reservoir_size=1000, percentiles=(50.0,))
    s = brute_force_styles(G, 3000, 500, seed=0)
    rank_error = ((s < r.percentiles[50.0].double()).double().mean(0) - 0.5).abs()
    assert rank_error.max() < 0.07


def test_ranges_round_trip_through_a_file(G, tmp_path):
    r = estimate_style_ranges(G, num_samples=200, batch_size=50)
    path = r.save(tmp_path / "ranges.pt")
    r2 = StyleRanges.load(path)
    assert torch.equal(r.minimum, r2.minimum) and torch.equal(r.std, r2.std)
    assert r2.percentiles.keys() == r.percentiles.keys() and r2.num_samples == 200
    lo, hi = r2.clamp_values("percentile", percentile=1.0)
    assert torch.all(lo <= hi)


def test_progress_is_reported_and_abort_stops(G):
    seen = []
    estimate_style_ranges(G, num_samples=100, batch_size=40, progress_fn=lambda d, t, m: seen.append((d, t)))
    assert seen == [(40, 100), (80, 100), (100, 100)]
    with pytest.raises(InterruptedError):
        estimate_style_ranges(G, num_samples=100, batch_size=40, abort_fn=lambda: True)


def test_a_file_that_is_not_a_ranges_file_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"hello": 1}, path)
    with pytest.raises(ValueError, match="not a style-ranges file"):
        StyleRanges.load(path)
