"""The fast synthesis path gives the reference path's images and gradients, on the CPU, in every layout."""

import pytest
import torch

from explain_engine.ops import conv2d_resample, polyphase_up_weight, setup_filter
from explain_engine.stylegan2 import Generator, generator_kwargs, set_synthesis_path
from tests.helpers.tiny import tiny_generator


def _generator(**synthesis_overrides) -> Generator:
    # non-zero noise strengths and biases so the comparison sees them
    return tiny_generator(seed=0, noise_strength=0.3, bias_std=0.2, **synthesis_overrides)


def _images(G, styles, **path) -> torch.Tensor:
    set_synthesis_path(G, **path)
    with torch.no_grad():
        return G.synthesize_from_styles(styles, noise_mode="const")


def test_polyphase_weight_equals_transposed_convolution_then_fir():
    torch.manual_seed(1)
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    ref = conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False)
    out = torch.nn.functional.pixel_shuffle(
        torch.nn.functional.conv2d(x, polyphase_up_weight(w, f), padding=1), 2
    )
    assert out.shape == ref.shape == (3, 6, 10, 10)
    assert torch.allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize("up_mode", ["transpose", "polyphase"])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("conv_clamp", [None, 0.5])
def test_fast_path_matches_reference_within_1e4(up_mode, channels_last, conv_clamp):
    G = _generator(conv_clamp=conv_clamp)
    styles = G.styles_from_w(G.mapping(torch.randn(5, G.z_dim)))
    ref = _images(G, styles, fast=False, channels_last=False)
    fast = _images(G, styles, fast=True, up_mode=up_mode, channels_last=channels_last)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max().item() < 1e-4
    if conv_clamp is not None:  # the clamp is active somewhere, so the comparison covers it
        assert not torch.equal(
            _images(G, styles, fast=True, channels_last=False), _images(_generator(), styles)
        )


def test_fast_path_gradients_match_reference():
    G = _generator()
    s0 = G.styles_from_w(G.mapping(torch.randn(3, G.z_dim))).detach()
    grads = []
    for fast in (False, True):
        set_synthesis_path(G, fast=fast)
        s = s0.clone().requires_grad_(True)
        G.synthesize_from_styles(s, noise_mode="const").square().mean().backward()
        grads.append(s.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_fast_path_matches_reference_on_the_demo64_preset():
    torch.manual_seed(0)
    G = Generator(**generator_kwargs("demo64")).eval()
    styles = G.styles_from_w(G.mapping(torch.randn(2, G.z_dim)))
    ref = _images(G, styles, fast=False)
    for up_mode in ("transpose", "polyphase"):
        assert (_images(G, styles, fast=True, up_mode=up_mode) - ref).abs().max().item() < 1e-4


def test_bad_up_mode_is_refused():
    with pytest.raises(ValueError, match="up_mode"):
        set_synthesis_path(_generator(), up_mode="nearest")
