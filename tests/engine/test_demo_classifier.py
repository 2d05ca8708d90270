"""The demo classifier: the shipped checkpoint, its loss-estimator head and its training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain_engine.classifiers import DEMO_CLASSIFIER_PATH, load_classifier
from explain_engine.demo.classifier import DemoClassifier, DemoClassifierConfig, pairwise_ranking_loss
from explain_engine.demo.phantoms import make_phantom_dataset
from explain_engine.demo.training.classifier import (
    ClassifierTrainingConfig,
    augment_radiographs,
    fit_temperature,
    phantom_tensor,
    train_classifier,
)
from explain_engine.metrics.classification import auroc

# Phantom streams the shipped classifier never saw (it was trained and evaluated on seeds 100-103).
HELD_OUT_SEED = 7


@pytest.fixture(scope="module")
def shipped() -> DemoClassifier:
    return load_classifier("demo")


def test_the_shipped_checkpoint_is_small_and_loads_as_the_demo_classifier(shipped):
    assert DEMO_CLASSIFIER_PATH.stat().st_size < 5 * 2**20
    assert isinstance(shipped, DemoClassifier)
    assert shipped.target == "Pneumonia" and shipped.input_size == (128, 128)
    assert shipped.metrics["val"]["auroc"] >= 0.9
    assert not shipped.training and not any(p.requires_grad for p in shipped.parameters())


def test_the_shipped_classifier_separates_held_out_phantoms(shipped):
    held_out = make_phantom_dataset(200, size=128, seed=HELD_OUT_SEED, split="val")
    with torch.no_grad():
        probs = shipped(phantom_tensor(held_out)).numpy()
    assert auroc(held_out.labels, probs) >= 0.9


def test_the_loss_estimate_is_per_image_and_differentiable(shipped):
    x = (torch.rand(3, 1, 128, 128) * 2 - 1).requires_grad_(True)
    estimate = shipped.loss_estimate(x)
    assert estimate.shape == (3,)
    estimate.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_the_ranking_loss_of_a_hand_made_batch():
    # Pairs (0, 2) and (1, 3). Pair (0, 2): l0 = 1 > l2 = 0, so sign +1; e0 - e2 = -2 -> max(0, 1 + 2) = 3.
    # Pair (1, 3): l1 = 2 > l3 = 1, sign +1; e1 - e3 = 0 -> max(0, 1 - 0) = 1. Mean 2.
    estimated = torch.tensor([0.0, 0.0, 2.0, 0.0])
    target = torch.tensor([1.0, 2.0, 0.0, 1.0])
    assert pairwise_ranking_loss(estimated, target).item() == pytest.approx(2.0)


def test_the_ranking_loss_is_zero_once_pairs_are_ordered_by_the_margin():
    estimated = torch.tensor([3.0, -1.0, 1.5, 0.5], requires_grad=True)
    target = torch.tensor([0.9, 0.1, 0.2, 0.3])  # l0 > l2 and l1 < l3
    loss = pairwise_ranking_loss(estimated, target)
    assert loss.item() == pytest.approx(0.0)
    # Equal losses count as "not greater": the second sample must then be estimated higher by the margin.
    tied = pairwise_ranking_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 0.5]), margin=1.0)
    assert tied.item() == pytest.approx(1.0)


def test_the_ranking_loss_leaves_an_odd_sample_out_and_does_not_train_the_target():
    estimated = torch.tensor([0.0, 1.0, 5.0], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    loss = pairwise_ranking_loss(estimated, target)
    assert loss.item() == pytest.approx(2.0)  # only the pair (0, 1): max(0, 1 - (0 - 1))
    loss.backward()
    assert target.grad is None
    assert estimated.grad.tolist() == [-1.0, 1.0, 0.0]


def test_the_loss_head_can_learn_without_reshaping_the_classifier():
    model = DemoClassifier(DemoClassifierConfig(input_size=32, stem_channels=8, block_channels=(8, 8, 8, 8)))
    _, estimate = model.logit_and_loss_estimate(torch.zeros(2, 1, 32, 32), detach_loss_head=True)
    estimate.sum().backward()
    assert all(p.grad is None for p in model.network.blocks.parameters())
    assert model.network.loss_head_out.weight.grad is not None


def test_temperature_scaling_recovers_the_temperature_of_over_and_underconfident_logits():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, 20000)
    labels = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated at temperature 1
    assert fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(z / 2, labels) == pytest.approx(0.5, rel=0.05)


def test_augmentation_keeps_shape_range_and_laterality():
    gen = torch.Generator().manual_seed(0)
    x = (
        torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(4, 1, 32, 32).contiguous()
    )  # dark left, bright right
    out = augment_radiographs(x, gen)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.all(out[..., :8].mean(dim=(1, 2, 3)) < out[..., -8:].mean(dim=(1, 2, 3)))  # never mirrored


def test_one_epoch_on_a_few_phantoms_trains_and_reports_metrics():
    train = make_phantom_dataset(64, size=64, seed=11)
    val = make_phantom_dataset(32, size=64, seed=12, split="val")
    neutral = make_phantom_dataset(32, size=64, seed=13, split="neutral")
    config = ClassifierTrainingConfig(
        batch_size=32,
        model=DemoClassifierConfig(input_size=64, stem_channels=8, block_channels=(8, 16, 16, 16)),
    )
    seen = []
    model, metrics = train_classifier(
        train,
        val,
        epochs=1,
        config=config,
        eval_sets={"neutral": neutral},
        progress_fn=lambda *a: seen.append(a),
    )
    assert isinstance(model, DemoClassifier) and not model.training
    assert metrics["steps"] == 2 and metrics["epochs_completed"] == 1 and not metrics["aborted"]
    assert [s for s, _, _ in seen[:2]] == [1, 2] and seen[0][1] == 2
    for split in ("val", "neutral"):
        assert 0.0 <= metrics[split]["auroc"] <= 1.0 and metrics[split]["n"] == 32
        assert {"accuracy", "ece", "brier", "reliability", "auroc_shortcut_present"} <= set(metrics[split])
    assert np.isfinite(metrics["history"][0]["ce"]) and np.isfinite(metrics["history"][0]["ranking"])


def test_training_stops_when_aborted():
    train = make_phantom_dataset(32, size=64, seed=11)
    config = ClassifierTrainingConfig(
        batch_size=8, model=DemoClassifierConfig(input_size=64, stem_channels=8, block_channels=(8, 8, 8, 8))
    )
    model, metrics = train_classifier(train, epochs=3, config=config, abort_fn=lambda: True)
    assert metrics["aborted"] and metrics["steps"] == 1 and metrics["epochs_completed"] == 0
