"""The oracle: a second classifier of another architecture, shipped beside the demo one, that judges
counterfactuals (its verdicts, its features, its training, and the message when its file is missing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from explain_engine.classifiers import (
    ClassifierError,
    ImageClassifier,
    InputTransform,
    load_classifier,
    save_classifier,
)
from explain_engine.cli import main
from explain_engine.counterfactuals.oracle import (
    DEMO_ORACLE_PATH,
    load_oracle,
    oracle_features,
    oracle_metrics,
)
from explain_engine.demo.classifier import DemoClassifier, PlainCNNClassifier, PlainCNNConfig
from explain_engine.demo.phantoms import make_phantom_dataset
from explain_engine.demo.training.classifier import ClassifierTrainingConfig, phantom_tensor, train_classifier
from explain_engine.metrics.classification import auroc

# A phantom stream neither the oracle (200-203), the demo classifier (100-103) nor the GAN (0) was trained on.
HELD_OUT_SEED = 7


class _Brightness(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * x.mean(dim=(1, 2, 3))


class BrightnessClassifier(ImageClassifier):
    """P(label) = sigmoid(10 * mean intensity): brighter images are 'positive'."""

    def __init__(self):
        super().__init__(
            _Brightness(), name="brightness", target="Pneumonia", input_transform=InputTransform.identity()
        )

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class _Constant(nn.Module):
    def __init__(self, logit: float):
        super().__init__()
        self.value = logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), self.value)


class ConstantClassifier(ImageClassifier):
    def __init__(self, logit: float):
        super().__init__(
            _Constant(logit), name="constant", target="Pneumonia", input_transform=InputTransform.identity()
        )

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


@pytest.fixture(scope="module")
def shipped() -> ImageClassifier:
    return load_oracle()


def test_the_shipped_oracle_is_small_another_architecture_and_carries_its_model_card(shipped):
    assert DEMO_ORACLE_PATH.stat().st_size < 5 * 2**20
    assert isinstance(shipped, PlainCNNClassifier)
    assert not isinstance(shipped, DemoClassifier)
    assert shipped.target == load_classifier("demo").target
    assert not shipped.training and not any(p.requires_grad for p in shipped.parameters())
    card = json.loads(DEMO_ORACLE_PATH.with_name(DEMO_ORACLE_PATH.name + ".metrics.json").read_text())
    assert card["config"]["model"]["arch"] == "demo-plain-cnn"
    assert card["config"]["seed"] != 0  # the demo classifier's initialisation seed
    assert card["data"]["phantom_seed"] not in (0, 100, 11)  # not the GAN's, demo classifier's or bench's
    assert card["neutral"]["auroc"] == pytest.approx(shipped.metrics["neutral"]["auroc"])


def test_the_shipped_oracle_separates_phantoms_of_an_unseen_stream(shipped):
    held_out = make_phantom_dataset(200, size=64, seed=HELD_OUT_SEED, split="val")
    with torch.no_grad():
        probs = shipped(phantom_tensor(held_out)).numpy()
    assert auroc(held_out.labels, probs) >= 0.9


def test_a_missing_oracle_says_where_to_put_it(tmp_path):
    missing = tmp_path / "nowhere" / "oracle.pt"
    with pytest.raises(ClassifierError, match="oracle classifier not found") as info:
        load_oracle(missing)
    assert str(missing) in str(info.value) and "train-classifier --arch demo-plain-cnn" in str(info.value)


def test_the_verdicts_of_a_hand_made_oracle():
    oracle = BrightnessClassifier()
    queries = torch.stack(
        [torch.full((1, 8, 8), -0.3), torch.full((1, 8, 8), 0.3), torch.full((1, 8, 8), -0.3)]
    )
    # 0: darkened further (target 1 missed); 1: darkened below 0 (target 0 reached); 2: brightened (target 1).
    counterfactuals = torch.stack(
        [torch.full((1, 8, 8), -0.5), torch.full((1, 8, 8), -0.1), torch.full((1, 8, 8), 0.2)]
    )
    verdicts = oracle_metrics(oracle, queries, counterfactuals, [1, 0, 1], classifier=ConstantClassifier(5.0))
    sig = lambda v: 1 / (1 + np.exp(-10 * v))  # noqa: E731
    assert [v["oracle_reached_target"] for v in verdicts] == [0.0, 1.0, 1.0]
    assert [v["oracle_flipped"] for v in verdicts] == [0.0, 1.0, 1.0]
    assert verdicts[0]["oracle_target_probability_change"] == pytest.approx(sig(-0.5) - sig(-0.3), abs=1e-6)
    assert verdicts[1]["oracle_target_probability_change"] == pytest.approx(sig(0.3) - sig(-0.1), abs=1e-6)
    assert verdicts[2]["oracle_probability"] == pytest.approx(sig(0.2), abs=1e-6)
    assert verdicts[2]["oracle_probability_query"] == pytest.approx(sig(-0.3), abs=1e-6)
    # The explained classifier says "positive" for everything: the oracle agrees where it says positive too.
    assert [v["oracle_agreement"] for v in verdicts] == [0.0, 0.0, 1.0]
    assert all(
        v["classifier_probability"] == pytest.approx(1 / (1 + np.exp(-5.0)), abs=1e-6) for v in verdicts
    )
    no_classifier = oracle_metrics(oracle, queries, counterfactuals, [1, 0, 1])
    assert all(np.isnan(v["oracle_agreement"]) for v in no_classifier)


def test_oracle_metrics_refuse_unpaired_images_and_bad_targets():
    oracle = BrightnessClassifier()
    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match="pair up"):
        oracle_metrics(oracle, x, torch.zeros(3, 1, 8, 8), [0, 1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        oracle_metrics(oracle, x, x, [0, 2])


def test_the_oracle_features_are_its_pooled_last_stage(shipped):
    images = phantom_tensor(make_phantom_dataset(6, size=64, seed=HELD_OUT_SEED, split="val"))
    features = oracle_features(shipped, images)
    width = shipped.config.stage_channels[-1]
    assert features.shape == (6, width) and features.dtype == np.float64
    with torch.no_grad():
        last = shipped.features(images, [f"stages.{len(shipped.config.stage_channels) - 1}"])
        pooled = next(iter(last.values())).mean(dim=(2, 3))
        # The head reads exactly these features (dropout is off in eval mode).
        logit = shipped.network.head(pooled)[:, 0]
    assert np.allclose(features, pooled.numpy(), atol=1e-6)
    assert torch.allclose(logit, shipped.logit(images), atol=1e-5)


def test_the_plain_cnn_trains_without_a_loss_head_and_round_trips(tmp_path):
    train = make_phantom_dataset(64, size=32, seed=11)
    val = make_phantom_dataset(32, size=32, seed=12, split="val")
    config = ClassifierTrainingConfig(
        batch_size=32, seed=3, model=PlainCNNConfig(input_size=32, stage_channels=(4, 8, 8))
    )
    model, metrics = train_classifier(train, val, epochs=1, config=config)
    assert isinstance(model, PlainCNNClassifier) and not model.training
    assert not hasattr(model, "loss_estimate")
    assert metrics["steps"] == 2 and metrics["config"]["model"]["arch"] == "demo-plain-cnn"
    assert metrics["history"][0]["ranking"] == 0.0 and np.isfinite(metrics["history"][0]["ce"])
    path = save_classifier(tmp_path / "oracle.pt", model, metrics=metrics)
    loaded = load_oracle(path)
    assert isinstance(loaded, PlainCNNClassifier) and loaded.config == model.config
    x = phantom_tensor(val)[:4]
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_the_plain_cnn_refuses_sizes_its_stages_cannot_halve():
    with pytest.raises(ValueError, match="multiple of 16"):
        PlainCNNConfig(input_size=40, stage_channels=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="dropout"):
        PlainCNNConfig(dropout=1.0)


def test_train_classifier_offers_the_plain_architecture(tmp_path, capsys):
    out = tmp_path / "oracle.pt"
    args = ["train-classifier", "--arch", "demo-plain-cnn", "--out", str(out), "--size", "32"]
    args += ["--train", "32", "--val", "16", "--epochs", "1", "--batch", "16", "--seed", "1"]
    assert main(args) == 0
    assert "val: auroc" in capsys.readouterr().out
    classifier = load_classifier(out)
    assert isinstance(classifier, PlainCNNClassifier) and classifier.input_size == (32, 32)
    metrics = json.loads((tmp_path / "oracle.pt.metrics.json").read_text())
    assert metrics["config"]["model"]["arch"] == "demo-plain-cnn" and metrics["config"]["seed"] == 1
