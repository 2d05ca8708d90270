"""Projection into StyleSpace recovers images that the generator itself produced."""

import pytest
import torch

from explain_engine.projection import ProjectionConfig, fidelity_summary, project_images
from explain_engine.ranges import estimate_style_ranges
from explain_engine.stylegan2 import Discriminator, Generator
from tests.helpers.tiny import TINY_D, TINY_G


class MeanBrightness(torch.nn.Module):
    """A stand-in classifier: the probability rises with mean brightness; features are two pooled maps."""

    def forward(self, x):
        return torch.sigmoid(4 * x.mean(dim=[1, 2, 3]))

    def features(self, x):
        return {"pool2": torch.nn.functional.avg_pool2d(x, 2), "pool4": torch.nn.functional.avg_pool2d(x, 4)}


@pytest.fixture
def G():
    torch.manual_seed(0)
    return Generator(**TINY_G).eval()


def test_projection_recovers_generated_images(G):
    torch.manual_seed(1)
    with torch.no_grad():
        x = G.synthesize(G.mapping(torch.randn(3, 16)))
    ranges = estimate_style_ranges(G, num_samples=2000, batch_size=500)
    res = project_images(x, G, init_styles=ranges.mean, config=ProjectionConfig(steps=300, lr=0.1))
    assert res.styles.shape == (3, G.style_layout.dims)
    assert res.reconstructions.shape == x.shape
    assert res.psnr.median() >= 30.0
    assert torch.all(res.ssim > 0.9)
    assert res.loss_history[-1] < res.loss_history[0]


def test_projection_uses_classifier_and_discriminator_terms_and_reports_fidelity(G):
    torch.manual_seed(2)
    D = Discriminator(**TINY_D).eval()
    with torch.no_grad():
        x = G.synthesize(G.mapping(torch.randn(2, 16)))
    clf = MeanBrightness()
    res = project_images(
        x, G, classifier=clf, D=D, config=ProjectionConfig(steps=150, lr=0.1, prefer_lpips=False)
    )
    assert res.perceptual_kind == "classifier-features"
    assert torch.allclose(res.prob_original, clf(x), atol=1e-6)
    assert (res.prob_original - res.prob_reconstruction).abs().max() < 0.1
    fig = res.per_image(0)
    assert set(fig) >= {"psnr", "ssim", "mse", "perceptual", "prob_original", "prob_reconstruction"}
    assert D.b4.mbstd.group_size == 4  # restored after projection


def test_an_image_projects_the_same_alone_or_in_a_batch(G):
    torch.manual_seed(3)
    with torch.no_grad():
        x = G.synthesize(G.mapping(torch.randn(3, 16)))
    cfg = ProjectionConfig(steps=20, lr=0.1, prefer_lpips=False)
    together = project_images(x, G, classifier=MeanBrightness(), config=cfg)
    alone = project_images(x[1:2], G, classifier=MeanBrightness(), config=cfg)
    assert torch.allclose(together.styles[1], alone.styles[0], atol=1e-4)


def test_wrong_image_size_is_refused_and_abort_stops(G):
    with pytest.raises(ValueError, match="images must be"):
        project_images(torch.zeros(1, 1, 32, 32), G)
    with pytest.raises(InterruptedError):
        project_images(torch.zeros(1, 1, 16, 16), G, abort_fn=lambda: True)


def test_style_scale_optimises_the_same_loss_with_steps_sized_per_dimension(G):
    torch.manual_seed(4)
    with torch.no_grad():
        x = G.synthesize(G.mapping(torch.randn(2, 16)))
    ranges = estimate_style_ranges(G, num_samples=2000, batch_size=500)
    cfg = ProjectionConfig(steps=200, lr=0.1, prefer_lpips=False)
    plain = project_images(x, G, init_styles=ranges.mean, config=cfg)
    # A scale of ones is the plain optimisation.
    ones = project_images(x, G, init_styles=ranges.mean, style_scale=torch.ones_like(ranges.std), config=cfg)
    assert torch.allclose(plain.styles, ones.styles, atol=1e-5)
    # Per-dimension steps: every dimension can only have moved in proportion to its scale; here only the first
    # 8 dimensions may move, the rest stay at the start.
    scale = torch.full_like(ranges.std, 1e-9)
    scale[:8] = ranges.std[:8]
    frozen = project_images(x, G, init_styles=ranges.mean, style_scale=scale, config=cfg)
    moved = (frozen.styles - ranges.mean).abs()
    assert moved[:, 8:].max() < 1e-5 and moved[:, :8].max() > 1e-2
    scaled = project_images(x, G, init_styles=ranges.mean, style_scale=ranges.std, config=cfg)
    assert scaled.loss_history[-1] < scaled.loss_history[0]
    with pytest.raises(ValueError, match="style_scale"):
        project_images(x, G, style_scale=torch.ones(3), config=cfg)
    with pytest.raises(ValueError, match="style_scale"):
        project_images(x, G, style_scale=torch.zeros_like(ranges.std), config=cfg)


def test_fidelity_summary_applies_the_demo_bar():
    psnr = torch.tensor([27.0, 28.5, 29.0])
    ssim = torch.tensor([0.80, 0.85, 0.88])
    p = torch.tensor([0.2, 0.5, 0.9])
    met = fidelity_summary(psnr, ssim, p, p + torch.tensor([0.05, -0.02, 0.0]))
    assert met["median_psnr"] == 28.5 and met["median_ssim"] == pytest.approx(0.85)
    assert met["prob_within_0.1"] == 1.0 and met["max_prob_diff"] == pytest.approx(0.05)
    assert met["bar_met"] and met["images"] == 3
    # Pixels short of both thresholds.
    assert not fidelity_summary(psnr - 2, ssim, p, p)["bar_met"]
    # SSIM alone can carry the pixel part.
    assert fidelity_summary(psnr - 2, ssim + 0.1, p, p)["bar_met"]
    # Probabilities moved by more than 0.1 for a third of the images: below 90 %.
    off = fidelity_summary(psnr, ssim, p, p + torch.tensor([0.3, 0.0, 0.0]))
    assert off["prob_within_0.1"] == pytest.approx(2 / 3) and not off["bar_met"]
