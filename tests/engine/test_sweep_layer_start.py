"""The exact sweep's per-layer reuse: a perturbed pass starts after the perturbed layer's convolution, from its
cached linear part plus one input channel's convolution and its demodulation updated in closed form."""

import numpy as np
import pytest
import torch

from explain_engine.ops import conv2d_resample, single_channel_conv
from explain_engine.ranges import estimate_style_ranges
from explain_engine.sweep import StyleSweeper, SweepConfig, sweep_deltas
from tests.engine.test_sweep import TinyClassifier, brute_force, setup  # noqa: F401 - the shared fixture
from tests.helpers.tiny import tiny_generator


@pytest.mark.parametrize("up", [1, 2])
def test_one_channels_convolution_is_the_layers_convolution_of_that_channel_alone(up):
    torch.manual_seed(0)
    G = tiny_generator()
    block = G.synthesis.blocks[2]
    layer = block.conv0 if up == 2 else block.conv1
    channels_in = layer.weight.shape[1]
    h = layer.resolution // up
    planes = torch.randn(5, h, h)
    channels = torch.tensor([0, 3, 3, channels_in - 1, 7])
    out = single_channel_conv(planes, layer.dense_weight(), channels, up=up)
    full = torch.zeros(5, channels_in, h, h)
    full[torch.arange(5), channels] = planes
    expected = conv2d_resample(
        full, layer.weight, f=layer.resample_filter, up=up, padding=1, flip_weight=(up == 1)
    )
    assert out.shape == expected.shape == (5, layer.weight.shape[0], layer.resolution, layer.resolution)
    assert torch.allclose(out, expected, atol=1e-5)
    assert expected.abs().max() > 0.1


def test_the_layer_by_layer_base_pass_gives_the_generators_image(setup):  # noqa: F811
    G, clf, ranges, styles = setup
    sweeper = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig())
    assert sorted(sweeper._layer_start) == [
        li for li, layer in enumerate(G.style_layout) if layer.kind == "conv"
    ]
    with torch.inference_mode():
        cache = sweeper.base_pass(styles)
        image = G.synthesize_from_styles(styles, noise_mode="const")
    assert torch.allclose(cache["image"], image, atol=1e-6)
    assert set(cache["layers"]) == set(sweeper._layer_start)


def test_layer_and_block_starts_give_the_brute_force_deltas(setup):  # noqa: F811
    G, clf, ranges, styles = setup
    expected = brute_force(G, clf, styles, ranges.minimum, ranges.maximum)
    results = {}
    for reuse in ("layer", "block"):
        cfg = SweepConfig(mode="exact", batch_size=5, dim_chunk=40)
        results[reuse] = sweep_deltas(G, clf, styles, ranges, config=cfg, reuse=reuse).deltas
        assert np.abs(results[reuse] - expected).max() <= 1e-5, reuse
    assert np.abs(results["layer"] - results["block"]).max() <= 1e-5


def test_conv_dimensions_never_rerun_their_block_with_layer_starts(setup, monkeypatch):  # noqa: F811
    G, clf, ranges, styles = setup
    sweeper = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig(batch_size=8))
    starts = []
    original = sweeper._run_from_layer
    monkeypatch.setattr(sweeper, "_run_from_block", lambda *a, **k: pytest.fail("a block was rerun"))
    monkeypatch.setattr(sweeper, "_run_from_layer", lambda li, *a: starts.append(li) or original(li, *a))
    conv_dims = [d for d in range(G.style_layout.dims) if not sweeper._torgb[d]]
    with torch.inference_mode():
        sweeper.evaluate_exact(styles[:1], conv_dims)
    assert set(starts) == set(sweeper._layer_start)


def test_active_clamps_and_biases_are_carried_exactly():
    """With a small conv clamp that clips many activations, noise and biases, the updated layer output is
    still the recomputed one."""
    G = tiny_generator(seed=3, noise_strength=0.3, bias_std=0.5, conv_clamp=0.5)
    clf = TinyClassifier().eval()
    ranges = estimate_style_ranges(G, num_samples=500, batch_size=250)
    with torch.no_grad():
        styles = G.styles_from_w(G.mapping(torch.randn(1, 16)))
        features = G.synthesis.blocks[1].forward_features(
            G.synthesis.blocks[0].forward_features(None, G.style_layout.split(styles)[:1], batch_size=1),
            G.style_layout.split(styles)[2:4],
        )
    assert (features.abs() >= 0.5 - 1e-6).float().mean() > 0.05  # the clamp is active
    expected = brute_force(G, clf, styles, ranges.minimum, ranges.maximum)
    got = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="exact", batch_size=6)).deltas
    assert np.abs(got - expected).max() <= 1e-6
    assert np.abs(expected).max() > 1e-3  # deltas are small with most activations clipped, but not vacuous


def test_blocks_with_a_residual_branch_start_at_the_block():
    G = tiny_generator(seed=1, architecture="resnet")
    clf = TinyClassifier().eval()
    ranges = estimate_style_ranges(G, num_samples=500, batch_size=250)
    with torch.no_grad():
        styles = G.styles_from_w(G.mapping(torch.randn(1, 16)))
    sweeper = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig())
    assert sweeper._layer_start == {}
    expected = brute_force(G, clf, styles, ranges.minimum, ranges.maximum)
    got = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="exact", batch_size=6)).deltas
    assert np.abs(got - expected).max() <= 1e-5


def test_an_unknown_reuse_is_refused(setup):  # noqa: F811
    G, clf, ranges, _ = setup
    with pytest.raises(ValueError, match="reuse must be one of"):
        StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig(), reuse="image")


def test_layer_starts_in_channels_last_give_the_same_deltas(setup):  # noqa: F811
    """The memory format CUDA uses (channels-last features), forced on here."""
    G, clf, ranges, styles = setup
    cfg = SweepConfig(mode="exact", batch_size=6, dim_chunk=60)
    plain = sweep_deltas(G, clf, styles, ranges, config=cfg).deltas
    blocks = G.synthesis.blocks
    try:
        for block in blocks:
            block.channels_last = True
        with torch.inference_mode():
            sweeper = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, cfg)
            cache = sweeper.base_pass(styles)
        assert cache["layers"][2][0].is_contiguous(memory_format=torch.channels_last)
        channels_last = sweep_deltas(G, clf, styles, ranges, config=cfg).deltas
    finally:
        for block in blocks:
            del block.channels_last
    assert np.abs(channels_last - plain).max() <= 1e-6
