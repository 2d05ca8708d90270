"""Latent Shift: the autoencoder, its training and checkpoints, and the counterfactual sequence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from explain_engine.autoencoder import ImageAutoencoder
from explain_engine.checkpoints import CheckpointError, load_autoencoder, save_networks
from explain_engine.classifiers import ImageClassifier, InputTransform
from explain_engine.counterfactuals import CounterfactualError, generate, generate_batch, save_result
from explain_engine.counterfactuals.latentshift import latent_direction


class _Mean(nn.Module):
    def forward(self, x):
        return x


class MeanBrightnessClassifier(ImageClassifier):
    """logit = slope * (mean(x) - level): P(label) rises with the image's mean brightness."""

    def __init__(self, level: float, slope: float = 10.0):
        super().__init__(_Mean(), name="mean", target="Pneumonia", input_transform=InputTransform.identity(1))
        self.level, self.slope = level, slope
        self.eval().requires_grad_(False)

    def network_logit(self, x):
        return self.slope * (x.mean(dim=(1, 2, 3)) - self.level)


class PoolingAutoencoder(nn.Module):
    """A linear autoencoder with a known latent space: encode = 2x2 average pooling, decode = nearest
    up-sampling. The decoded mean equals the latent mean, so the lambda that reaches a brightness goal is known."""

    img_resolution, img_channels = 16, 1
    latent_shape = (1, 8, 8)

    def __init__(self):
        super().__init__()
        self.register_buffer("anchor", torch.zeros(1))

    def encode(self, x):
        return F.avg_pool2d(x, 2)

    def decode(self, z):
        return F.interpolate(z, scale_factor=2.0, mode="nearest")


def dim_query(seed: int = 0) -> torch.Tensor:
    """A dim, textured image [1, 16, 16] well inside [-1, 1] (no clamping along the path)."""
    g = torch.Generator().manual_seed(seed)
    return -0.5 + 0.1 * torch.rand(1, 16, 16, generator=g)


def test_the_shift_reaches_the_smallest_lambda_that_crosses_the_decision():
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=-0.2)
    x = dim_query()
    res = generate(x, classifier=C, target=1, method="latentshift", autoencoder=AE, refine_steps=12)
    z0 = AE.encode(x[None])
    rms = float(z0.square().mean().sqrt())
    # the direction is uniform (d mean / dz is the same everywhere), scaled to rms(z0): the mean rises by
    # lambda * rms, and the decision flips at mean = level
    expected = (-0.2 - float(z0.mean())) / rms
    assert res.kind == "criticism" and res.reached_target
    assert res.details["lambda"] == pytest.approx(expected, abs=0.05 / 2**12 + 1e-4)
    assert res.probability == pytest.approx(0.5, abs=0.01)
    # the sequence runs from the reconstruction to the counterfactual with a rising probability
    assert torch.allclose(res.path[0], res.reconstruction) and torch.allclose(
        res.path[-1], res.counterfactual
    )
    assert res.path.shape[0] == 10
    assert all(b >= a for a, b in zip(res.path_probabilities, res.path_probabilities[1:], strict=False))
    # only the brightness moved: the edit is the same everywhere
    edit = res.counterfactual - res.reconstruction
    assert float(edit.std()) < 1e-5 and float(edit.mean()) > 0


def test_targets_set_the_direction_and_prototypes_ask_for_more_confidence():
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=-0.6)  # the dim query is already positive
    x = dim_query()
    down = generate(x, classifier=C, target=0, method="latentshift", autoencoder=AE)
    assert down.kind == "criticism" and down.reached_target
    assert float(down.counterfactual.mean()) < float(down.reconstruction.mean())
    proto = generate(x, classifier=C, target=1, method="latentshift", autoencoder=AE)
    assert proto.kind == "prototype"
    assert proto.probability >= max(0.95, proto.query_probability) - 1e-6
    assert proto.details["confidence_goal"] == pytest.approx(0.95)


def test_an_unreachable_goal_is_reported_not_hidden():
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=0.9)
    res = generate(
        x := dim_query(), classifier=C, target=1, method="latentshift", autoencoder=AE, max_steps=3
    )
    assert not res.details["reached_goal"] and not res.reached_target
    assert res.details["search_steps"] == 3 and res.details["lambda"] == pytest.approx(0.15)
    assert x.shape == res.query.shape


def test_the_iterative_variant_follows_the_gradient_step_by_step():
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=-0.2)
    res = generate(dim_query(), classifier=C, target=1, method="latentshift", autoencoder=AE, iterative=True)
    assert res.details["variant"] == "iterative" and res.reached_target
    assert res.details["refine_steps"] == 0 and res.path.shape[0] == 10


def test_a_batch_gives_every_image_its_own_lambda():
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=-0.2)
    images = torch.stack([dim_query(0), dim_query(1) - 0.2])
    results = generate_batch(images, classifier=C, targets=1, method="latentshift", autoencoder=AE)
    assert all(r.reached_target for r in results)
    assert results[1].details["lambda"] > results[0].details["lambda"]


def test_the_direction_vanishes_where_the_classifier_does_not_look():
    AE = PoolingAutoencoder()
    C = MeanBrightnessClassifier(level=0.0, slope=0.0)
    z = AE.encode(dim_query()[None])
    assert torch.equal(latent_direction(AE, C, z, torch.tensor([1])), torch.zeros_like(z))


def test_latentshift_needs_an_autoencoder_of_the_images_size():
    C = MeanBrightnessClassifier(level=0.0)
    with pytest.raises(CounterfactualError, match="needs an autoencoder"):
        generate(dim_query(), classifier=C, target=1, method="latentshift")
    with pytest.raises(CounterfactualError, match="for this autoencoder"):
        generate(
            torch.zeros(1, 8, 8),
            classifier=C,
            target=1,
            method="latentshift",
            autoencoder=PoolingAutoencoder(),
        )
    with pytest.raises(CounterfactualError, match="path_frames"):
        generate(
            dim_query(),
            classifier=C,
            target=1,
            method="latentshift",
            autoencoder=PoolingAutoencoder(),
            path_frames=1,
        )


def test_the_autoencoder_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    AE = ImageAutoencoder(img_resolution=16, channels=(4, 8), latent_channels=2).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert AE.encode(x).shape == (3, 2, 4, 4) and AE.latent_shape == (2, 4, 4)
    assert AE(x).shape == x.shape
    path = save_networks(tmp_path / "ae.pt", {"AE": AE})
    loaded = load_autoencoder(path)
    assert torch.equal(loaded(x), AE(x))
    with pytest.raises(CheckpointError, match="train-autoencoder"):
        load_autoencoder(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no network named"):
        load_autoencoder(save_networks(tmp_path / "other.pt", {"G": AE}))
    with pytest.raises(ValueError, match="multiple of"):
        ImageAutoencoder(img_resolution=20, channels=(4, 8, 8))


def test_training_lowers_the_reconstruction_error_and_writes_a_checkpoint(tmp_path):
    from explain_engine.checkpoints import checkpoint_metadata
    from explain_engine.demo.phantoms import make_phantom_dataset
    from explain_engine.demo.training.autoencoder import AutoencoderTrainingConfig, train_autoencoder

    train = make_phantom_dataset(8, size=32, seed=900)
    val = make_phantom_dataset(4, size=32, seed=901)
    cfg = AutoencoderTrainingConfig(
        epochs=25, batch_size=8, channels=[4, 8], latent_channels=4, learning_rate=5e-3
    )
    model, metrics = train_autoencoder(train, val, config=cfg, out=tmp_path / "ae.pt")
    assert metrics["steps"] == 25 and not metrics["aborted"]
    assert metrics["history"][-1]["l1"] < 0.7 * metrics["history"][0]["l1"]
    assert metrics["val"]["images"] == 4 and metrics["val"]["psnr_median"] > 10
    assert checkpoint_metadata(tmp_path / "ae.pt")["metrics"]["steps"] == 25
    assert load_autoencoder(tmp_path / "ae.pt").latent_shape == (4, 8, 8)
    calls = []
    _, stopped = train_autoencoder(
        train, config=cfg, abort_fn=lambda: len(calls) > 0 or calls.append(1) is not None
    )
    assert stopped["aborted"] and stopped["steps"] < 25


def test_save_result_writes_the_sequence_as_a_gif(tmp_path):
    AE, C = PoolingAutoencoder(), MeanBrightnessClassifier(level=-0.2)
    res = generate(dim_query(), classifier=C, target=1, method="latentshift", autoencoder=AE)
    files = save_result(res, tmp_path / "out")
    with Image.open(files["path"]) as gif:
        assert gif.n_frames == 10
    summary = json.loads(files["metrics"].read_text())
    assert summary["method"] == "latentshift" and summary["details"]["reached_goal"]


def test_the_cli_runs_latentshift_with_a_given_autoencoder(tmp_path, capsys):
    from explain_engine.classifiers import save_classifier
    from explain_engine.cli import main
    from explain_engine.demo.classifier import DemoClassifier, DemoClassifierConfig

    torch.manual_seed(0)
    config = DemoClassifierConfig(
        input_size=32, stem_channels=8, block_channels=(8, 8, 8, 8), loss_head_width=4
    )
    save_classifier(tmp_path / "classifier.pt", DemoClassifier(config))
    save_networks(
        tmp_path / "ae.pt", {"AE": ImageAutoencoder(img_resolution=32, channels=(4, 8), latent_channels=2)}
    )
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(tmp_path / "query.png")
    args = ["counterfactual", str(tmp_path / "query.png"), "--method", "latentshift", "--target", "1"]
    args += ["--classifier", str(tmp_path / "classifier.pt"), "--out", str(tmp_path / "out"), "--steps", "4"]
    assert main([*args, "--autoencoder", str(tmp_path / "ae.pt")]) == 0
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["method"] == "latentshift" and summary["parameters"]["max_steps"] == 4
    assert (tmp_path / "out" / "path.gif").exists() and (tmp_path / "out" / "reconstruction.png").exists()
    assert main([*args, "--autoencoder", str(tmp_path / "none.pt")]) == 2
    assert "autoencoder checkpoint not found" in capsys.readouterr().err
