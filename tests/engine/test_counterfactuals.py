"""Counterfactual methods on tiny models: each moves the classifier toward the target within its constraints."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explain_engine.classifiers import ImageClassifier, InputTransform
from explain_engine.counterfactuals import (
    METHODS,
    CounterfactualError,
    generate,
    generate_batch,
    save_result,
)
from explain_engine.counterfactuals.base import ClassifierProbe, target_cross_entropy
from explain_engine.counterfactuals.gci import optimise_styles, search_lambda
from explain_engine.counterfactuals.priors import DeepImagePriorUNet, FourierFeatureINR
from explain_engine.counterfactuals.saliency import grad_cam, integrated_gradients
from explain_engine.ranges import estimate_style_ranges
from tests.helpers.tiny import tiny_generator

# ------------------------------------------------------------------------------------------------------------
# Hand-made classifiers whose behaviour is known


class _BrightnessNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.AvgPool2d(2)

    def forward(self, x):
        return self.block(x)


class BrightnessClassifier(ImageClassifier):
    """P(label) rises with the mean brightness: logit = slope * (mean - threshold)."""

    default_feature_layers = ("block",)

    def __init__(self, threshold: float, slope: float = 8.0):
        super().__init__(
            _BrightnessNet(),
            name="brightness",
            target="Pneumonia",
            input_transform=InputTransform.identity(1),
        )
        self.threshold, self.slope = threshold, slope
        self.eval().requires_grad_(False)

    def network_logit(self, x):
        return self.slope * (self.network(x).mean(dim=(1, 2, 3)) * 2 - 1 - self.threshold)


class _RoughnessNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate", bias=False)
        with torch.no_grad():
            self.block.weight.zero_()
            self.block.weight[0, 0, 1, 1] = 1.0  # the image itself
            self.block.weight[1, 0] = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])

    def forward(self, x):
        return self.block(x)


class RoughnessClassifier(ImageClassifier):
    """A classifier with a shortcut off the data manifold, and a loss estimator that knows it.

    The label's evidence is the brightness of the image's centre (the on-manifold route) plus high-frequency
    roughness (a route no smooth image takes); the loss estimate is the roughness, so an image that the
    classifier is pushed toward through roughness gets a high estimated loss, by construction.
    """

    default_feature_layers = ("block",)

    def __init__(self):
        super().__init__(
            _RoughnessNet(), name="roughness", target="Pneumonia", input_transform=InputTransform.identity(1)
        )
        self.eval().requires_grad_(False)

    def _parts(self, x):
        f = self.network(x)
        h = x.shape[-1]
        centre = f[:, 0, h // 4 : 3 * h // 4, h // 4 : 3 * h // 4].mean(dim=(1, 2))
        roughness = f[:, 1].square().mean(dim=(1, 2))
        return centre, roughness

    def network_logit(self, x):
        centre, roughness = self._parts(x)
        return 4.0 * (centre + 0.2) + 40.0 * roughness

    def loss_estimate(self, images):
        return 10.0 * self._parts(self.prepare(images))[1]


class _PlantedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.fill_(1.0)
            self.features[0].bias.copy_(torch.tensor([-0.5, 0.5]))

    def forward(self, x):
        return self.features(x)


class PlantedRegionClassifier(ImageClassifier):
    """Evidence = very bright pixels (channel 0: relu(x - 0.5), weight +2), pooled globally like a CNN's last
    block; channel 1 (relu(x + 0.5)) responds to any grey structure but the head ignores it (weight 0)."""

    default_feature_layers = ("features",)

    def __init__(self):
        super().__init__(
            _PlantedNet(), name="planted", target="Pneumonia", input_transform=InputTransform.identity(1)
        )
        self.eval().requires_grad_(False)

    def network_logit(self, x):
        pooled = self.network(x).mean(dim=(2, 3))
        return 2.0 * pooled[:, 0] + 0.0 * pooled[:, 1] - 0.2


def smooth_image(size: int = 16, level: float = -0.6, texture: float = 0.01) -> torch.Tensor:
    """A radial blob [1, 1, size, size] around ``level`` with a faint fixed texture (``texture`` std)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    noise = torch.randn(size, size, generator=torch.Generator().manual_seed(0)) * texture
    return (level + 0.3 * torch.exp(-(xx**2 + yy**2) * 2) + noise)[None, None]


@pytest.fixture(scope="module")
def tiny_gan():
    torch.set_num_threads(1)
    G = tiny_generator(seed=0).requires_grad_(False)
    ranges = estimate_style_ranges(G, num_samples=1000, batch_size=500)
    with torch.no_grad():
        styles = G.styles_from_w(G.mapping(torch.randn(2, 16)))
        images = G.synthesize_from_styles(styles).clamp(-1, 1)
    # the decision threshold sits a little above both images' brightness: both are negatives
    threshold = float(images.mean(dim=(1, 2, 3)).max()) + 0.05
    return G, ranges, styles, images, BrightnessClassifier(threshold)


# ------------------------------------------------------------------------------------------------------------
# The lambda search (papers/002)


def test_the_lambda_search_finds_the_smallest_succeeding_lambda_of_a_brute_grid():
    thresholds = [0.003, 0.42, 1.0, 7.5, 260.0]  # success iff lambda >= threshold, per image
    grid = np.geomspace(1e-4, 1e4, 4001)  # a brute-force grid, 0.5 % apart
    evaluations = []

    def evaluate(indices, lams):
        evaluations.append(len(indices))
        return [(lam >= thresholds[i], {}, lam) for i, lam in zip(indices, lams, strict=True)]

    searches, chosen = search_lambda(
        evaluate,
        len(thresholds),
        init=1.0,
        factor=10.0,
        max_bracket_steps=6,
        bisection_steps=10,
        tolerance=0.05,
    )
    for t, s, payload in zip(thresholds, searches, chosen, strict=True):
        brute = grid[np.argmax(grid >= t)]  # the smallest grid lambda that succeeds
        assert s.reached and payload == s.lam
        assert s.lower < t <= s.lam <= t * 1.05  # the bracket holds the true threshold, within tolerance
        assert s.lam <= brute * 1.05 and brute <= s.lam * 1.05
        assert all(trial["reached"] == (trial["lambda"] >= t) for trial in s.trials)
    assert len(evaluations) <= 1 + 6 + 10


def test_the_lambda_search_reports_when_no_lambda_succeeds():
    def evaluate(indices, lams):
        return [(False, {"tried": lam}, lam) for lam in lams]

    (search,), (payload,) = search_lambda(evaluate, 1, init=1.0, factor=10.0, max_bracket_steps=3)
    assert not search.reached and search.lam is None
    assert payload == 1000.0 == search.lower  # the result closest to success: the largest lambda tried
    assert [t["lambda"] for t in search.trials] == [1.0, 10.0, 100.0, 1000.0]


class _FlatLayout:
    dims = 6

    def locate(self, dim):
        return SimpleNamespace(name="linear"), dim


class LinearGenerator(nn.Module):
    """G(s) = the 4 x 4 image s @ A, a generator for which the lambda problem is smooth and monotone."""

    img_channels, img_resolution, style_layout = 1, 4, _FlatLayout()

    def __init__(self):
        super().__init__()
        self.A = nn.Parameter(torch.randn(6, 16, generator=torch.Generator().manual_seed(1)) * 0.2)

    def synthesize_from_styles(self, styles, noise_mode="const"):
        return (styles @ self.A).view(-1, 1, 4, 4)


class LinearClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.linspace(-1, 1, 16)

    def logit(self, images):
        return 3 * (images.flatten(1) @ self.w) - 0.5

    def forward(self, images):
        return torch.sigmoid(self.logit(images))


def test_gci_lambda_bisection_agrees_with_a_brute_grid_on_a_monotone_problem():
    torch.manual_seed(0)
    G, C = LinearGenerator().requires_grad_(False), LinearClassifier()
    s0 = torch.zeros(1, 6)
    query = G.synthesize_from_styles(s0)
    settings = dict(steps=50, lr=0.08)
    half = torch.full((1,), 0.5)

    def reaches(lam: float) -> bool:
        # one image per call, as GCI evaluates its trials: the L1 term's sign flips make results depend on
        # floating-point details near the threshold, so the grid must be computed the same way
        trial = optimise_styles(
            G,
            C,
            s0,
            query,
            torch.ones(1, dtype=torch.long),
            torch.tensor([lam]),
            threshold_start=half,
            threshold_end=half,
            **settings,
        )
        return bool(trial.target_probability[0] >= 0.5)

    grid = np.geomspace(0.01, 100, 21)
    outcomes = [reaches(float(lam)) for lam in grid]
    assert outcomes == sorted(outcomes) and any(outcomes) and not all(outcomes)  # monotone, with a switch
    k = outcomes.index(True)
    res = generate(
        query[0],
        classifier=C,
        target=1,
        method="gci",
        generator=G,
        styles=s0,
        metrics=False,
        anchor="query",
        **settings,
    )
    lam = res.details["lambda"]
    assert grid[k - 1] * 0.95 <= lam <= grid[k] * 1.05  # the bisection lands in the grid's switching cell
    assert res.reached_target and res.kind == "criticism"
    assert res.details["lambda_lower"] < lam <= res.details["lambda_lower"] * 1.05  # bisected to tolerance


# ------------------------------------------------------------------------------------------------------------
# Generative counterfactual introspection and StyleSpace counterfactuals on a tiny StyleGAN2


GCI_FAST = dict(steps=20, lr=0.1, max_bracket_steps=2, bisection_steps=2, path_frames=5)


@pytest.fixture(scope="module")
def gci_batch(tiny_gan):
    """Criticisms (target 1) of both tiny-GAN images in one batch, with the progress reports seen."""
    G, ranges, styles, images, C = tiny_gan
    seen = []
    results = generate_batch(
        images,
        classifier=C,
        targets=1,
        method="gci",
        generator=G,
        styles=styles,
        ranges=ranges,
        progress_fn=lambda done, total, message: seen.append((done, total)),
        **GCI_FAST,
    )
    return results, seen


def test_gci_criticism_moves_toward_the_target_and_names_the_most_changed_styles(gci_batch):
    res = gci_batch[0][0]
    assert res.kind == "criticism" and res.details["latent_space"] == "S"
    assert res.target_probability > res.query_probability + 0.3  # target 1: P(label) itself
    assert res.reached_target and res.metrics["flipped"] == 1.0
    assert res.path.shape == (5, 1, 16, 16) and len(res.path_probabilities) == 5
    assert res.path_probabilities[-1] == pytest.approx(res.probability, abs=1e-5)
    top = res.details["top_changed_styles"]
    assert len(top) == 5 and {"dim", "layer", "channel", "change", "change_scaled"} <= set(top[0])
    assert abs(top[0]["change_scaled"]) >= abs(top[-1]["change_scaled"])


def test_gci_prototype_is_more_confident_than_the_query_and_not_the_query_itself(tiny_gan):
    G, ranges, styles, images, C = tiny_gan
    res = generate(
        images[1],
        classifier=C,
        target=0,
        method="gci",
        generator=G,
        styles=styles[1],
        metrics=False,
        **GCI_FAST,
    )
    goal = res.details["confidence_goal"]
    query_confidence = 1 - res.query_probability
    assert res.kind == "prototype"
    assert goal >= max(0.95, query_confidence + (1 - query_confidence) / 2) - 1e-6
    assert res.details["reached_goal"] and res.target_probability >= goal
    assert res.details["lambda"] > 0 and res.details["style_change_l2"] > 1e-3  # not the trivial A' = A
    assert (res.counterfactual - res.reconstruction).abs().max() > 1e-3


def test_gci_gives_every_image_of_a_batch_its_own_lambda_search(gci_batch):
    results = gci_batch[0]
    assert len(results) == 2 and all(r.reached_target for r in results)
    for r in results:
        lams = [t["lambda"] for t in r.details["lambda_trials"]]
        assert r.details["lambda"] == min(t["lambda"] for t in r.details["lambda_trials"] if t["reached"])
        assert lams[0] == 1.0 and len(set(lams)) == len(lams)


def test_stylespace_clamps_the_named_dimension_and_nothing_else(tiny_gan):
    G, ranges, styles, images, C = tiny_gan
    res = generate(
        images[0],
        classifier=C,
        target=1,
        method="stylespace",
        generator=G,
        styles=styles[0],
        ranges=ranges,
        dimension=40,
        direction="high",
        metrics=False,
    )
    expected = styles[:1].clone()
    expected[0, 40] = ranges.maximum[40]
    with torch.no_grad():
        image = G.synthesize_from_styles(expected).clamp(-1, 1)[0]
    assert torch.allclose(res.counterfactual, image, atol=1e-5)
    assert res.details["dimension"] == 40 and res.details["direction"] == "high"
    assert res.details["clamp_value"] == pytest.approx(float(ranges.maximum[40]))
    assert res.path.shape[0] == 12 and torch.allclose(res.path[0], res.reconstruction)


def test_stylespace_screening_picks_the_dimension_that_moves_most_toward_the_target(tiny_gan):
    G, ranges, styles, images, C = tiny_gan
    dims = G.style_layout.dims
    res = generate(
        images[0],
        classifier=C,
        target=1,
        method="stylespace",
        generator=G,
        styles=styles[0],
        ranges=ranges,
        screening_top_k=dims,
        metrics=False,
    )  # every dimension evaluated exactly
    clamped = styles[:1].repeat(2 * dims, 1)  # every dimension clamped low, then every one clamped high
    every = torch.arange(dims)
    clamped[every, every] = ranges.minimum
    clamped[dims + every, every] = ranges.maximum
    with torch.no_grad():
        base = C(G.synthesize_from_styles(styles[:1]).clamp(-1, 1))[0]
        best = float((C(G.synthesize_from_styles(clamped).clamp(-1, 1)) - base).max())
    assert res.details["screened"]
    assert res.probability - res.reconstruction_probability == pytest.approx(best, abs=1e-5)
    assert best > 0  # the target is 1, and some clamp raises the probability


# ------------------------------------------------------------------------------------------------------------
# Deep image prior (papers/000) and DISC (papers/001)


def test_the_deep_image_prior_unet_has_four_levels_and_any_size():
    net = DeepImagePriorUNet((20, 24), out_channels=1, channels=(4, 4, 8, 8))
    out = net()
    assert out.shape == (1, 1, 20, 24) and out.abs().max() < 1
    assert len(net.down) == len(net.up) == len(net.skip) == 4
    assert net.noise.shape[-2:] == (32, 32) and not net.noise.requires_grad
    inr = FourierFeatureINR((8, 12), out_channels=1, num_frequencies=16, hidden=16)
    assert inr().shape == (1, 1, 8, 12)


DIP_FAST = dict(
    pixel_warmup_steps=30,
    preimage_steps=10,
    counterfactual_steps=40,
    lr=0.02,
    lr_rampup_steps=5,
    channels=(4, 4, 8, 8),
    path_frames=4,
)


@pytest.fixture(scope="module")
def dip_pair():
    """The same DIP counterfactual with and without the loss-estimator term."""
    torch.set_num_threads(1)
    C, x = RoughnessClassifier(), smooth_image()
    kw = dict(classifier=C, target=1, method="dip", metrics=False, entropy_weight=0.5, **DIP_FAST)
    return (
        C,
        x,
        generate(x[0], loss_estimator_weight=0.5, **kw),
        generate(x[0], loss_estimator_weight=0.0, **kw),
    )


def test_dip_moves_the_probability_toward_the_target(dip_pair):
    C, x, regularised, plain = dip_pair
    for res in (regularised, plain):
        assert res.probability > res.reconstruction_probability + 0.05
        assert res.reconstruction is not None and res.path.shape == (4, 1, 16, 16)
        assert res.details["layer"] == "block"
    assert regularised.details["variant"] == "dip" and plain.details["variant"] == "dip-plain"


def test_plain_dip_drifts_further_from_the_manifold_than_with_the_loss_estimator(dip_pair):
    # Holds by construction here: the classifier can be moved through roughness, which the estimator measures.
    C, x, regularised, plain = dip_pair
    with torch.no_grad():
        drift_plain = float(C.loss_estimate(plain.counterfactual[None]))
        drift_regularised = float(C.loss_estimate(regularised.counterfactual[None]))
    assert drift_plain > drift_regularised * 1.5
    assert regularised.details["loss_target"] == pytest.approx(float(C.loss_estimate(x)), rel=1e-5)


def test_the_loss_estimator_term_pulls_the_estimate_toward_its_target():
    # The regulariser's gradient direction, model-free: one step lowers a too-high estimate, raises a too-low one.
    C = RoughnessClassifier()
    x = smooth_image() + 0.05 * torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    level = float(C.loss_estimate(x))
    for l_target, sign in ((level / 2, -1), (level * 2, +1)):
        xv = x.clone().requires_grad_(True)
        (C.loss_estimate(xv) - l_target).abs().sum().backward()
        stepped = (x - 1e-3 * xv.grad / xv.grad.norm()).detach()
        assert sign * (float(C.loss_estimate(stepped)) - level) > 0


def test_dip_needs_a_loss_estimator_unless_it_is_plain():
    with pytest.raises(CounterfactualError, match="loss-estimator head"):
        generate(smooth_image()[0], classifier=BrightnessClassifier(0.0), target=1, method="dip")
    res = generate(
        smooth_image()[0],
        classifier=BrightnessClassifier(0.0),
        target=1,
        method="dip",
        loss_estimator_weight=0,
        pixel_warmup_steps=0,
        preimage_steps=2,
        counterfactual_steps=2,
        channels=(4, 4, 8, 8),
    )
    assert res.details["variant"] == "dip-plain"


@pytest.mark.parametrize("prior", ["dip", "inr"])
def test_disc_rises_through_its_confidence_stages_from_a_reconstruction_of_the_query(prior):
    torch.set_num_threads(1)
    C, x = RoughnessClassifier(), smooth_image()
    options = dict(
        reconstruction_steps=80,
        stage_steps=40,
        confidence_schedule=(0.5, 0.7),
        inr_frequencies=32,
        inr_hidden=32,
        inr_scale=3.0,
        dip_channels=(4, 4, 8, 8),
        path_frames=6,
        lr=0.01 if prior == "inr" else 0.02,
        edit_lr=0.01 if prior == "inr" else 0.02,
        lr_rampup_steps=5,
    )
    res = generate(x[0], classifier=C, target=1, method="disc", prior=prior, metrics=False, **options)
    stages = res.details["stages"]
    assert [s["confidence"] for s in stages] == [0.5, 0.7]
    assert res.details["manifold"] == "loss_estimator" and res.details["layers"] == ["block"]
    assert res.details["reconstruction_psnr"] > 25  # the inversion starts from the query
    assert res.probability > res.reconstruction_probability + 0.1
    assert stages[0]["reached"] and stages[0]["target_probability"] >= 0.5
    assert res.path.shape[0] <= 6 and torch.allclose(res.path[0], res.reconstruction)


def test_disc_manifold_terms_without_a_loss_estimator():
    C, x = BrightnessClassifier(-0.3), smooth_image()
    options = dict(
        reconstruction_steps=5,
        stage_steps=3,
        confidence_schedule=(0.6,),
        dip_channels=(4, 4, 8, 8),
        metrics=False,
    )
    res = generate(x[0], classifier=C, target=1, method="disc", **options)
    assert res.details["manifold"] == "augmentation"
    with pytest.raises(CounterfactualError, match="needs a discriminator"):
        generate(x[0], classifier=C, target=1, method="disc", manifold="discriminator", **options)


# ------------------------------------------------------------------------------------------------------------
# Saliency baselines


def planted_case() -> tuple[torch.Tensor, torch.Tensor]:
    """A dark image with a bright planted square (the only evidence the classifier uses) and a mid-grey
    distractor square it ignores; returns the image [1, 1, 16, 16] and the square's mask [16, 16]."""
    x = torch.full((1, 1, 16, 16), -1.0)
    x[..., 3:7, 9:13] = 1.0
    x[..., 10:14, 2:6] = 0.3
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[3:7, 9:13] = True
    return x, mask


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_saliency_highlights_the_planted_discriminative_region(method):
    C = PlantedRegionClassifier()
    x, mask = planted_case()
    options = {"baseline": "black"} if method == "integrated_gradients" else {}
    res = generate(x[0], classifier=C, target=1, method=method, opacity_mask=mask, **options)
    assert res.heatmap.shape == (16, 16) and float(res.heatmap.min()) >= 0 and float(res.heatmap.max()) == 1
    assert res.kind == "attribution" and torch.equal(res.counterfactual, res.query)
    assert res.metrics["mass_in_opacity"] > 0.95 and res.metrics["pointing_game_opacity"] == 1.0


def test_grad_cam_defaults_to_the_last_feature_layer_and_refuses_unknown_layers():
    C = PlantedRegionClassifier()
    x, _ = planted_case()
    maps = grad_cam(C, x.repeat(3, 1, 1, 1), torch.tensor([1, 1, 0]))
    assert maps.shape == (3, 16, 16)
    assert torch.allclose(maps[0], maps[1]) and not torch.allclose(
        maps[0], maps[2]
    )  # target 0: other evidence
    with pytest.raises(CounterfactualError, match="no layer"):
        grad_cam(C, x, torch.tensor([1]), layer="nope")


def test_integrated_gradients_are_complete():
    C = RoughnessClassifier()
    x = smooth_image() + 0.1 * torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    baseline = torch.full_like(x, -0.5)
    attributions = integrated_gradients(C, x, torch.tensor([1]), steps=64, baseline=baseline)
    gap = float(C.logit(x) - C.logit(baseline))
    assert float(attributions.sum()) == pytest.approx(gap, rel=0.01)


# ------------------------------------------------------------------------------------------------------------
# The interface


def test_every_method_is_registered_with_its_config():
    assert set(METHODS) == {
        "stylespace",
        "gci",
        "dip",
        "disc",
        "gradcam",
        "integrated_gradients",
        "latentshift",
    }


def test_bad_requests_are_refused_with_clear_errors(tiny_gan):
    G, _, styles, images, C = tiny_gan
    x = images[0]
    with pytest.raises(CounterfactualError, match="unknown method"):
        generate(x, classifier=C, target=1, method="magic")
    with pytest.raises(CounterfactualError, match="unknown option"):
        generate(x, classifier=C, target=1, method="gci", generator=G, stepz=3)
    with pytest.raises(CounterfactualError, match="needs a generator"):
        generate(x, classifier=C, target=1, method="gci")
    with pytest.raises(CounterfactualError, match="target must be"):
        generate(x, classifier=C, target=2, method="gradcam")
    with pytest.raises(CounterfactualError, match=r"must be in \[-1, 1\]"):
        generate(x * 255, classifier=C, target=1, method="gradcam")
    with pytest.raises(CounterfactualError, match="styles must be"):
        generate(x, classifier=C, target=1, method="gci", generator=G, styles=styles[0, :-1])
    with pytest.raises(CounterfactualError, match="for this generator"):
        generate(torch.zeros(1, 8, 8), classifier=C, target=1, method="gci", generator=G)
    with pytest.raises(CounterfactualError, match="opacity_mask"):
        generate(x, classifier=C, target=1, method="gradcam", opacity_mask=np.zeros((4, 4), bool))
    with pytest.raises(CounterfactualError, match="must rise"):
        generate(x, classifier=C, target=1, method="disc", confidence_schedule=(0.9, 0.6))


def test_targets_can_be_named_by_label(tiny_gan):
    G, _, styles, images, C = tiny_gan
    for name, expected in (("Pneumonia", 1), ("no pneumonia", 0), ("1", 1), ("negative", 0)):
        assert (
            generate(images[0], classifier=C, target=name, method="gradcam", metrics=False).target == expected
        )


def test_progress_is_monotone_and_abort_stops_the_method(tiny_gan, gci_batch):
    seen = gci_batch[1]
    total = seen[-1][1]
    assert seen[-1] == (total, total) and all(b >= a for (a, _), (b, _) in zip(seen, seen[1:], strict=False))
    G, _, styles, images, C = tiny_gan
    for method, kw in (("gci", dict(generator=G, styles=styles[0], **GCI_FAST)), ("dip", DIP_FAST)):
        clf = RoughnessClassifier() if method == "dip" else C
        with pytest.raises(InterruptedError):
            generate(images[0], classifier=clf, target=1, method=method, abort_fn=lambda: True, **kw)


def test_save_result_writes_images_the_path_gif_and_metrics(tiny_gan, tmp_path):
    import json

    G, _, styles, images, C = tiny_gan
    res = generate(
        images[0], classifier=C, target=1, method="stylespace", generator=G, styles=styles[0], dimension=3
    )
    files = save_result(res, tmp_path / "out")
    assert {"query", "counterfactual", "reconstruction", "difference", "path", "metrics"} <= set(files)
    with Image.open(files["path"]) as gif:
        assert gif.n_frames == res.path.shape[0]
    summary = json.loads(files["metrics"].read_text())
    assert summary["method"] == "stylespace" and summary["details"]["dimension"] == 3
    assert "cout" in summary["metrics"] and summary["parameters"]["dimension"] == 3


def test_the_classifier_probe_reads_logit_features_and_loss_estimate_in_one_pass():
    C = RoughnessClassifier()
    x = smooth_image()
    out = ClassifierProbe(C, ["block"], loss_estimate=True)(x)
    assert torch.allclose(out.logit, C.logit(x)) and torch.allclose(out.loss_estimate, C.loss_estimate(x))
    assert out.features["block"].shape == (1, 2, 16, 16)
    assert float(target_cross_entropy(torch.tensor([0.0]), torch.tensor([1]))) == pytest.approx(math.log(2))


# ------------------------------------------------------------------------------------------------------------
# The command line


def test_the_cli_writes_the_counterfactual_the_path_gif_and_metrics(tmp_path, capsys):
    import json

    from explain_engine.classifiers import save_classifier
    from explain_engine.cli import main
    from explain_engine.demo.classifier import DemoClassifier, DemoClassifierConfig

    torch.manual_seed(0)
    config = DemoClassifierConfig(
        input_size=32, stem_channels=8, block_channels=(8, 8, 8, 8), loss_head_width=4
    )
    save_classifier(tmp_path / "classifier.pt", DemoClassifier(config))
    image = smooth_image(32, level=0.0, texture=0.05)[0, 0]
    Image.fromarray(np.uint8(np.clip((image.numpy() + 1) * 127.5, 0, 255))).save(tmp_path / "query.png")
    lung = np.zeros((32, 32), np.uint8)
    lung[4:28, 4:28] = 255
    Image.fromarray(lung).save(tmp_path / "lung.png")
    common = ["--classifier", str(tmp_path / "classifier.pt"), "--lung-mask", str(tmp_path / "lung.png")]
    rc = main(
        [
            "counterfactual",
            str(tmp_path / "query.png"),
            "--method",
            "dip",
            "--target",
            "1",
            "--out",
            str(tmp_path / "dip"),
            "--steps",
            "3",
            "--set",
            "pixel_warmup_steps=2",
            "--set",
            "preimage_steps=2",
            "--set",
            "channels=[4,4,8,8]",
            *common,
        ]
    )
    assert rc == 0
    for name in ("query.png", "counterfactual.png", "reconstruction.png", "difference.png", "path.gif"):
        assert (tmp_path / "dip" / name).is_file()
    summary = json.loads((tmp_path / "dip" / "metrics.json").read_text())
    assert summary["parameters"]["counterfactual_steps"] == 3 and summary["parameters"]["channels"] == [
        4,
        4,
        8,
        8,
    ]
    assert summary["metrics"]["lung_area_fraction"] == pytest.approx(24 * 24 / 32**2)
    assert "probability of Pneumonia" in capsys.readouterr().out

    rc = main(
        [
            "counterfactual",
            str(tmp_path / "query.png"),
            "--method",
            "gradcam",
            "--target",
            "no pneumonia",
            "--out",
            str(tmp_path / "cam"),
            *common,
        ]
    )
    assert rc == 0 and (tmp_path / "cam" / "heatmap.png").is_file()

    rc = main(
        [
            "counterfactual",
            str(tmp_path / "query.png"),
            "--method",
            "gci",
            "--target",
            "1",
            "--out",
            str(tmp_path / "gci"),
            *common,
        ]
    )
    assert rc == 2 and "needs a generator" in capsys.readouterr().err
