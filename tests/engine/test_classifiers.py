"""The classifier contract and its adapters: shapes, ranges, gradients, features, loading and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from explain_engine.classifiers import (
    CHECKPOINT_FORMAT,
    ClassifierError,
    ImageClassifier,
    InputTransform,
    load_classifier,
    save_classifier,
    xrv_weights_path,
)
from explain_engine.demo.classifier import DemoClassifier, DemoClassifierConfig

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notice

XRV_WEIGHTS = "densenet121-res224-all"


def images(n: int = 2, channels: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=gen) * 2 - 1


def assert_contract(classifier: ImageClassifier, x: torch.Tensor) -> torch.Tensor:
    """Probabilities [N] in (0, 1), consistent with the logit, and finite non-zero input gradients."""
    x = x.clone().requires_grad_(True)
    probs = classifier(x)
    assert probs.shape == (x.shape[0],)
    assert torch.all((probs > 0) & (probs < 1))
    probs.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    return probs.detach()


@pytest.fixture(scope="module")
def tiny_demo() -> DemoClassifier:
    torch.manual_seed(0)
    model = DemoClassifier(
        DemoClassifierConfig(input_size=32, stem_channels=8, block_channels=(8, 8, 16, 16))
    )
    return model.eval()


# -- the contract, on the demo architecture -----------------------------------------------------------------


def test_demo_architecture_honours_the_contract(tiny_demo):
    assert tiny_demo.target == "Pneumonia" and tiny_demo.input_size == (32, 32)
    probs = assert_contract(tiny_demo, images(3))
    torch.testing.assert_close(probs, torch.sigmoid(tiny_demo.logit(images(3))))


def test_other_sizes_and_three_channel_images_are_adapted_inside(tiny_demo):
    assert_contract(tiny_demo, images(2, channels=3, size=48))
    assert_contract(tiny_demo, images(2, channels=1, size=20))
    grey = images(2, channels=1, size=32)
    torch.testing.assert_close(tiny_demo(grey), tiny_demo(grey.expand(-1, 3, -1, -1)))


def test_features_returns_the_named_layers_attached_to_the_graph(tiny_demo):
    x = images(2).requires_grad_(True)
    feats = tiny_demo.features(x)
    assert list(feats) == ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    assert feats["stem"].shape == (2, 8, 16, 16) and feats["blocks.3"].shape == (2, 16, 1, 1)
    chosen = tiny_demo.features(x, ["blocks.1", "stem"])
    assert list(chosen) == ["blocks.1", "stem"]
    chosen["blocks.1"].square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_an_unknown_layer_is_refused_with_the_available_names(tiny_demo):
    with pytest.raises(ClassifierError, match=r"no layer\(s\) \['fc7'\].*blocks\.0"):
        tiny_demo.features(images(1), ["fc7"])


def test_images_on_another_scale_are_refused(tiny_demo):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        tiny_demo(images(1) * 127.5 + 127.5)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        tiny_demo(torch.zeros(32, 32))


def test_input_transform_checks_its_statistics():
    with pytest.raises(ValueError, match="mean"):
        InputTransform(size=(8, 8), channels=3, mean=(0.1, 0.2), std=(1.0,))


# -- this tool's checkpoint format --------------------------------------------------------------------------


def test_a_saved_demo_classifier_loads_back_with_the_same_outputs(tiny_demo, tmp_path):
    path = save_classifier(tmp_path / "clf.pt", tiny_demo, metrics={"val": {"auroc": 0.5}})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == 1
    assert raw["config"]["arch"] == "demo-cnn" and raw["config"]["input_size"] == 32
    assert list(tmp_path.iterdir()) == [path]  # written atomically, no temporary left behind
    loaded = load_classifier(path)
    assert isinstance(loaded, DemoClassifier) and not loaded.training
    assert loaded.metrics == {"val": {"auroc": 0.5}}
    x = images(3)
    torch.testing.assert_close(loaded(x), tiny_demo(x))


def test_a_checkpoint_for_another_target_is_refused(tiny_demo, tmp_path):
    path = save_classifier(tmp_path / "clf.pt", tiny_demo)
    with pytest.raises(ClassifierError, match="predicts 'Pneumonia', not 'Edema'"):
        load_classifier(path, target="Edema")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ClassifierError, match=r"not found: .*absent\.pt"):
        load_classifier(tmp_path / "absent.pt")


def test_a_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ClassifierError, match="junk.pt is not a readable"):
        load_classifier(path)


class RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_file_that_asks_to_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": RunsCode()}, path)
    with pytest.raises(ClassifierError, match="asks to run code"):
        load_classifier(path)
    assert "must never run" not in capsys.readouterr().out


def test_a_pytorch_file_of_another_kind_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"fc.weight": torch.zeros(1, 4)}, path)
    with pytest.raises(ClassifierError, match="give its architecture"):
        load_classifier(path)


# -- TorchScript --------------------------------------------------------------------------------------------


def small_network() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)
    )


def test_a_torchscript_file_is_recognised_and_honours_the_contract(tmp_path):
    network = small_network().eval()
    path = tmp_path / "scripted.pt"
    torch.jit.script(network).save(str(path))
    classifier = load_classifier(path)
    assert classifier.name == "torchscript:scripted.pt"
    x = images(3)
    assert_contract(classifier, x)
    torch.testing.assert_close(classifier.logit(x), network(x)[:, 0])


def test_a_torchscript_file_returning_probabilities(tmp_path):
    network = nn.Sequential(small_network(), nn.Sigmoid()).eval()
    path = tmp_path / "probs.pt"
    torch.jit.script(network).save(str(path))
    classifier = load_classifier(path, output="probability")
    x = images(2)
    torch.testing.assert_close(classifier(x), network(x)[:, 0])


def test_torchscript_features_need_an_exported_method(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(small_network()).save(str(path))
    classifier = load_classifier(path)
    assert classifier.features(images(1)) == {}
    with pytest.raises(ClassifierError, match="features"):
        classifier.features(images(1), ["0"])


# -- torchvision --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_state_dict(tmp_path_factory) -> Path:
    import torchvision

    torch.manual_seed(2)
    path = tmp_path_factory.mktemp("torchvision") / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=1).state_dict(), path)
    return path


def test_a_torchvision_state_dict_honours_the_contract(resnet18_state_dict):
    classifier = load_classifier(resnet18_state_dict, arch="resnet18")
    assert classifier.name == "torchvision:resnet18" and classifier.input_size == (224, 224)
    assert_contract(classifier, images(2, size=64))
    feats = classifier.features(images(1, size=64))
    assert list(feats) == ["layer1", "layer2", "layer3", "layer4"]
    assert feats["layer4"].shape == (1, 512, 7, 7)


def test_a_state_dict_of_another_architecture_is_refused(resnet18_state_dict):
    with pytest.raises(ClassifierError, match="does not fit torchvision resnet34"):
        load_classifier(resnet18_state_dict, arch="resnet34")


def test_an_unknown_torchvision_architecture_lists_the_valid_ones(resnet18_state_dict):
    with pytest.raises(
        ClassifierError, match=r"unknown torchvision architecture 'resnet19'; valid: .*resnet18"
    ):
        load_classifier(resnet18_state_dict, arch="resnet19")


# -- TorchXRayVision ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_xrv_densenet():
    import torchxrayvision as xrv

    torch.manual_seed(3)
    network = xrv.models.DenseNet(weights=None).eval()
    with torch.no_grad():  # trained weights give moderate logits; a random head would saturate the sigmoid
        network.classifier.weight.mul_(1e-3)
    return network


@pytest.fixture
def xrv_home(tmp_path, monkeypatch) -> Path:
    """A home folder of this test, so that ~/.torchxrayvision/ points into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def xrv_reference_pneumonia(network, x: torch.Tensor) -> torch.Tensor:
    """TorchXRayVision's own calibrated Pneumonia output for generator images at 224 px."""
    import torchxrayvision as xrv

    record = xrv.models.model_urls[XRV_WEIGHTS]
    network.op_threshs = torch.tensor(record["op_threshs"])
    try:
        out = network(x * 1024.0)
    finally:
        network.op_threshs = None
    return out[:, record["labels"].index("Pneumonia")]


def test_the_xrv_weights_file_is_expected_under_the_home_cache(xrv_home):
    path = xrv_weights_path(XRV_WEIGHTS)
    assert path.parent == xrv_home / ".torchxrayvision" / "models_data"
    assert path.name.endswith("densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt")


def test_a_missing_xrv_weights_file_names_the_expected_path(xrv_home):
    with pytest.raises(ClassifierError) as info:
        load_classifier(f"xrv:{XRV_WEIGHTS}")
    message = str(info.value)
    assert str(xrv_home / ".torchxrayvision" / "models_data") in message
    assert "never downloads" in message
    assert not (xrv_home / ".torchxrayvision").exists()  # nothing fetched, nothing created


def test_an_xrv_state_dict_loads_calibrated_and_differentiable(xrv_home, random_xrv_densenet):
    path = xrv_weights_path(XRV_WEIGHTS)
    path.parent.mkdir(parents=True)
    state = random_xrv_densenet.state_dict()
    state["op_threshs"] = torch.full((18,), 0.5)  # ignored: the package's table is the calibration
    torch.save(state, path)
    classifier = load_classifier(f"xrv:{XRV_WEIGHTS}")
    assert classifier.target == "Pneumonia" and classifier.input_size == (224, 224)
    assert classifier.op_thresh == pytest.approx(0.056810737)
    assert_contract(classifier, images(1, size=224))
    feats = classifier.features(images(1, size=64), ["features.denseblock1"])  # stops after that block
    assert feats["features.denseblock1"].shape == (1, 256, 56, 56)


def test_the_xrv_logit_is_zero_at_the_operating_point(xrv_home, random_xrv_densenet):
    path = xrv_weights_path(XRV_WEIGHTS)
    path.parent.mkdir(parents=True)
    torch.save(random_xrv_densenet.state_dict(), path)
    classifier = load_classifier(f"xrv:{XRV_WEIGHTS}")
    t = classifier.op_thresh
    z = torch.tensor([torch.logit(torch.tensor(t)).item(), -40.0, 40.0, -3.0, 3.0], requires_grad=True)
    classifier.raw_logit = lambda x: z
    logit = classifier.network_logit(torch.zeros(5, 1, 8, 8))
    assert logit[0].item() == pytest.approx(0.0, abs=1e-5)
    assert torch.isfinite(logit).all() and logit[1] < -30 and logit[2] > 30
    p = torch.sigmoid(logit[3:])
    s = torch.sigmoid(z[3:])
    expected = torch.where(s < t, s / (2 * t), 1 - (1 - s) / (2 * (1 - t)))  # TorchXRayVision's op_norm
    torch.testing.assert_close(p, expected.detach())
    logit.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_a_whole_pickled_xrv_densenet_loads_and_matches_the_package_output(xrv_home, random_xrv_densenet):
    path = xrv_weights_path(XRV_WEIGHTS)
    path.parent.mkdir(parents=True)
    torch.save(random_xrv_densenet, path)  # how the package's release files are made
    classifier = load_classifier(f"xrv:{XRV_WEIGHTS}")
    x = images(1, size=224)
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), xrv_reference_pneumonia(random_xrv_densenet, x))


def test_an_unknown_pathology_lists_the_valid_ones(xrv_home):
    with pytest.raises(ClassifierError, match=r"does not predict 'Covid'.*Pneumonia"):
        load_classifier(f"xrv:{XRV_WEIGHTS}", target="Covid")


def test_unknown_xrv_weights_list_the_valid_ones():
    with pytest.raises(
        ClassifierError, match=r"unknown TorchXRayVision DenseNet weights.*densenet121-res224-all"
    ):
        load_classifier("xrv:densenet121-res224-everything")
