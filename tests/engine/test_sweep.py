"""The style-dimension sweep: exact and screening modes against a brute-force loop, and resuming."""

import numpy as np
import pytest
import torch

from explain_engine.ranges import estimate_style_ranges
from explain_engine.stylegan2 import Generator
from explain_engine.sweep import (
    SweepConfig,
    delta_tolerance,
    open_deltas,
    plan_units,
    refine_screening,
    sweep_deltas,
    sweep_precision,
)
from tests.helpers.tiny import TINY_G


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, x):
        return torch.sigmoid(3 * self.fc(torch.tanh(self.conv(x)).mean([2, 3]))[:, 0])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    G = Generator(**TINY_G).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
    clf = TinyClassifier().eval()
    ranges = estimate_style_ranges(G, num_samples=2000, batch_size=500)
    with torch.no_grad():
        styles = G.styles_from_w(G.mapping(torch.randn(2, 16)))
    return G, clf, ranges, styles


def brute_force(G, clf, styles, low, high):
    n, dims = styles.shape
    out = np.zeros((n, dims, 2), np.float32)
    with torch.no_grad():
        for i in range(n):
            base = clf(G.synthesize_from_styles(styles[i : i + 1]).clamp(-1, 1))[0]
            for d in range(dims):
                for k, v in enumerate((low[d], high[d])):
                    s = styles[i : i + 1].clone()
                    s[0, d] = v
                    p = clf(G.synthesize_from_styles(s).clamp(-1, 1))[0]
                    out[i, d, k] = float(base - p) if k == 0 else float(p - base)
    return out


def test_exact_sweep_equals_a_brute_force_loop(setup):
    G, clf, ranges, styles = setup
    expected = brute_force(G, clf, styles, ranges.minimum, ranges.maximum)
    for mode in ("naive", "exact"):
        res = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode=mode, batch_size=7, dim_chunk=50))
        assert res.deltas.shape == (2, G.style_layout.dims, 2)
        assert np.abs(res.deltas - expected).max() <= 1e-5, mode
        assert res.exact_mask is None
    assert np.abs(expected).max() > 0.01  # the check is not vacuous


def test_screening_is_exact_where_it_evaluates(setup):
    G, clf, ranges, styles = setup
    exact = sweep_deltas(G, clf, styles, ranges).deltas
    res = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="screening", screening_top_k=20))
    mask = res.exact_mask
    assert mask.shape == (2, G.style_layout.dims) and mask.sum(1).tolist() == [20, 20]
    assert np.abs(res.deltas[mask] - exact[mask]).max() <= 1e-5
    assert np.isfinite(res.deltas).all()


def test_percentile_clamping_uses_the_percentile_values(setup):
    G, clf, ranges, styles = setup
    res = sweep_deltas(G, clf, styles[:1], ranges, config=SweepConfig(clamp="percentile", percentile=1.0))
    assert np.allclose(res.low, ranges.percentiles[1.0].numpy())
    assert np.allclose(res.high, ranges.percentiles[99.0].numpy())


def test_an_interrupted_sweep_resumes_to_identical_output(setup, tmp_path):
    G, clf, ranges, styles = setup
    cfg = SweepConfig(image_chunk=1, dim_chunk=100)
    uninterrupted = sweep_deltas(G, clf, styles, ranges, config=cfg)
    full = uninterrupted.deltas
    calls = []

    def abort_after_two_units():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(InterruptedError):
        sweep_deltas(
            G, clf, styles, ranges, config=cfg, out_dir=tmp_path / "sw", abort_fn=abort_after_two_units
        )
    done = np.load(tmp_path / "sw" / "done.npy")
    assert done.sum() == 2
    progress = []
    res = sweep_deltas(
        G,
        clf,
        styles,
        ranges,
        config=cfg,
        out_dir=tmp_path / "sw",
        progress_fn=lambda d, t, m: progress.append(d),
    )
    units = plan_units(2, G.style_layout.dims, cfg)
    assert res.perturbations < sum(
        2 * (u.dim_stop - u.dim_start) + 1 for u in units
    )  # finished units skipped
    # ... but the units' cost counts them, as recorded when they were done: the same as in one run
    assert res.unit_perturbations == uninterrupted.unit_perturbations == uninterrupted.perturbations
    again = sweep_deltas(G, clf, styles, ranges, config=cfg, out_dir=tmp_path / "sw", units=[1])
    assert again.perturbations == 0
    assert again.unit_perturbations == 2 * (units[1].dim_stop - units[1].dim_start) + 1  # + the base pass
    deltas, base, meta = open_deltas(tmp_path / "sw")
    assert np.array_equal(np.asarray(deltas), full)
    assert meta["num_images"] == 2 and np.isfinite(base).all()


def test_resuming_into_the_folder_of_another_sweep_is_refused(setup, tmp_path):
    G, clf, ranges, styles = setup
    sweep_deltas(G, clf, styles[:1], ranges, out_dir=tmp_path / "sw")
    with pytest.raises(ValueError, match="different sweep"):
        sweep_deltas(G, clf, styles[1:2], ranges, out_dir=tmp_path / "sw")


def test_units_can_be_split_between_workers(setup, tmp_path):
    G, clf, ranges, styles = setup
    cfg = SweepConfig(image_chunk=2, dim_chunk=64)
    n_units = len(plan_units(2, G.style_layout.dims, cfg))
    sweep_deltas(G, clf, styles, ranges, config=cfg, out_dir=tmp_path / "sw", units=range(0, n_units, 2))
    sweep_deltas(G, clf, styles, ranges, config=cfg, out_dir=tmp_path / "sw", units=range(1, n_units, 2))
    deltas, _, _ = open_deltas(tmp_path / "sw")
    assert np.abs(np.asarray(deltas) - sweep_deltas(G, clf, styles, ranges).deltas).max() <= 1e-6


def test_the_deltas_precision_is_recorded_with_the_sweep(setup, tmp_path):
    G, clf, ranges, styles = setup
    cfg = SweepConfig(image_chunk=2, dim_chunk=64)
    res = sweep_deltas(G, clf, styles[:1], ranges, config=cfg, out_dir=tmp_path / "sw", units=[0])
    assert res.precision == "float32" and sweep_precision(torch.device("cpu"), cfg) == "float32"
    assert open_deltas(tmp_path / "sw")[2]["precision"] == "float32"
    # bf16 on CUDA when the config asks for it (the default); float32 when it does not.
    assert sweep_precision(torch.device("cuda"), cfg) == "bf16"
    assert sweep_precision(torch.device("cuda"), SweepConfig(bf16_on_cuda=False)) == "float32"
    # One unit computed in bf16 (by a GPU worker) makes the whole sweep's deltas bf16, whoever runs later.
    (tmp_path / "sw" / "precision-bf16").touch()
    sweep_deltas(G, clf, styles[:1], ranges, config=cfg, out_dir=tmp_path / "sw", units=[1])
    assert open_deltas(tmp_path / "sw")[2]["precision"] == "bf16"
    assert delta_tolerance("bf16") == 2.7e-2 and delta_tolerance("float32") == 0.0
    with pytest.raises(ValueError, match="precision"):
        delta_tolerance("fp8")


def test_mismatched_ranges_are_refused(setup):
    G, clf, ranges, styles = setup
    with pytest.raises(ValueError, match="must match"):
        sweep_deltas(G, clf, styles[:, :-1], ranges)


def test_refining_screened_dimensions_makes_them_exact_on_every_image(setup):
    G, clf, ranges, styles = setup
    exact = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="exact"))
    screened = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="screening", screening_top_k=5))
    deltas, mask = screened.deltas.copy(), screened.exact_mask.copy()
    dims = [0, 7, 40, 41, G.style_layout.dims - 1]
    before = mask[:, dims].sum()

    evaluated = refine_screening(
        G, clf, styles, ranges, deltas, mask, dims, config=SweepConfig(mode="screening")
    )

    assert mask[:, dims].all() and evaluated == 2 * (mask[:, dims].size - before) + len(styles)
    assert np.abs(deltas[:, dims] - exact.deltas[:, dims]).max() < 1e-5
    others = np.setdiff1d(np.arange(G.style_layout.dims), dims)
    assert np.array_equal(deltas[:, others], screened.deltas[:, others])  # nothing else touched
    assert refine_screening(G, clf, styles, ranges, deltas, mask, dims) == 0  # already exact: nothing to do
