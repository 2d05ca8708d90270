"""The generator and discriminator: shapes, StyleSpace layout and the two synthesis paths."""

import pytest
import torch

from explain_engine.stylegan2 import Discriminator, Generator, discriminator_kwargs, generator_kwargs
from tests.helpers.tiny import TINY_D, TINY_G, tiny_generator


@pytest.fixture
def G():
    # non-zero noise strengths and biases so the test sees their effect
    return tiny_generator(seed=0, noise_strength=0.2, bias_std=0.1)


def test_paper256_has_the_papers_7424_style_dimensions():
    G = Generator(**generator_kwargs("paper256"))
    layout = G.style_layout
    assert layout.dims == 7424
    assert layout.conv_dims == 4928
    assert layout.torgb_dims == 2496
    assert G.img_resolution == 256 and G.img_channels == 1


def test_state_dict_names_follow_stylegan2_ada_pytorch(G):
    names = set(G.state_dict())
    for expected in [
        "mapping.fc0.weight",
        "mapping.w_avg",
        "synthesis.b4.const",
        "synthesis.b4.conv1.affine.weight",
        "synthesis.b8.conv0.weight",
        "synthesis.b8.conv0.noise_const",
        "synthesis.b16.torgb.weight",
        "synthesis.b8.resample_filter",
        "synthesis.b16.conv1.noise_strength",
    ]:
        assert expected in names
    D = Discriminator(**discriminator_kwargs("demo64"))
    assert {"b64.fromrgb.weight", "b64.skip.weight", "b4.fc.weight", "b4.out.bias"} <= set(D.state_dict())


def test_images_and_logits_have_the_expected_shapes(G):
    img = G(torch.randn(3, 16))
    assert img.shape == (3, 1, 16, 16)
    D = Discriminator(**TINY_D)
    assert D(torch.randn(4, 1, 16, 16)).shape == (4, 1)


def test_layout_maps_dimensions_to_layers_and_back(G):
    layout = G.style_layout
    names = [layer.name for layer in layout]
    assert names[:4] == ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1"]
    assert sum(layer.channels for layer in layout) == layout.dims
    for d in [0, 5, layout.dims // 2, layout.dims - 1]:
        layer, ch = layout.locate(d)
        assert layout.index(layer.name, ch) == d
    with pytest.raises(IndexError):
        layout.locate(layout.dims)
    torgb = layout.layer("b16.torgb")
    assert torgb.kind == "torgb" and torgb.resolution == 16


def test_synthesis_from_styles_equals_synthesis_from_w(G):
    ws = G.mapping(torch.randn(2, 16))
    with torch.no_grad():
        a = G.synthesize(ws, noise_mode="const")
        b = G.synthesize_from_styles(G.styles_from_w(ws), noise_mode="const")
        c = G.synthesize(ws, noise_mode="const", fused_modconv=True)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)


def test_const_noise_is_deterministic_and_random_noise_is_not(G):
    ws = G.mapping(torch.randn(1, 16))
    with torch.no_grad():
        assert torch.equal(G.synthesize(ws), G.synthesize(ws))
        assert not torch.equal(G.synthesize(ws, noise_mode="random"), G.synthesize(ws, noise_mode="random"))
        assert not torch.equal(G.synthesize(ws, noise_mode="none"), G.synthesize(ws, noise_mode="const"))


def test_perturbing_one_style_dimension_changes_the_image(G):
    s = G.styles_from_w(G.mapping(torch.randn(1, 16))).detach()
    s2 = s.clone()
    s2[0, G.style_layout.index("b8.conv1", 3)] += 5.0
    with torch.no_grad():
        assert (G.synthesize_from_styles(s) - G.synthesize_from_styles(s2)).abs().max() > 1e-3


def test_gradients_from_an_image_score_back_to_styles_are_finite(G):
    s = G.styles_from_w(G.mapping(torch.randn(2, 16))).detach().requires_grad_(True)
    score = torch.sigmoid(G.synthesize_from_styles(s).mean(dim=[1, 2, 3]))
    score.sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_truncation_pulls_w_toward_its_average(G):
    G.mapping.w_avg.fill_(0.5)
    z = torch.randn(2, 16)
    w1 = G.mapping(z)
    w0 = G.mapping(z, truncation_psi=0)
    assert torch.allclose(w0, torch.full_like(w0, 0.5))
    assert not torch.allclose(w1, w0)


def test_bad_resolutions_and_shapes_are_refused(G):
    with pytest.raises(ValueError, match="power of two"):
        Generator(**{**TINY_G, "img_resolution": 24})
    with pytest.raises(ValueError, match="styles"):
        G.synthesize_from_styles(torch.zeros(1, G.style_layout.dims + 1))
