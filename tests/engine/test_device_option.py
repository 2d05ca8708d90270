"""--device on the command line and device= on the model loaders."""

import pytest
import torch

from explain_engine.checkpoints import load_discriminator, load_generator, save_networks
from explain_engine.classifiers import DEMO_CLASSIFIER_PATH, load_classifier
from explain_engine.cli import build_parser, main
from explain_engine.stylegan2 import Discriminator, Generator
from tests.helpers.tiny import TINY_D, TINY_G

COMPUTING = [
    ["ranges", "g.pt", "--out", "r.pt"],
    ["project", "x.png", "--generator", "g.pt", "--out", "o"],
    ["sweep", "s.npy", "--generator", "g.pt", "--classifier", "demo", "--ranges", "r.pt", "--out", "o"],
    ["select", "o", "--generator", "g.pt"],
    ["counterfactual", "x.png", "--method", "gradcam", "--classifier", "demo", "--target", "0", "--out", "o"],
    ["evaluate-classifier", "--classifier", "demo", "--phantoms", "4"],
    ["evaluate-gan", "g.pt"],
    ["validate-demo"],
    ["train-gan"],
    ["train-classifier", "--out", "c.pt"],
]


@pytest.mark.parametrize("argv", COMPUTING, ids=lambda a: a[0])
def test_every_computing_command_accepts_device_cpu(argv):
    args = build_parser().parse_args([*argv, "--device", "cpu"])
    assert args.device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_a_device_the_machine_lacks_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ranges", "g.pt", "--out", "r.pt", "--device", "cuda:7"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--device" in err and "cuda:7" in err
    assert "Traceback" not in err


def test_a_malformed_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "o", "--generator", "g.pt", "--device", "gpu0"])
    assert exit_info.value.code == 2
    assert "not one of" in capsys.readouterr().err


def test_loaders_put_the_models_on_the_device_asked_for(tmp_path):
    net = save_networks(tmp_path / "net.pt", {"G_ema": Generator(**TINY_G), "D": Discriminator(**TINY_D)})
    for model in (
        load_generator(net, device="cpu"),
        load_discriminator(net, device=torch.device("cpu")),
    ):
        assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    if DEMO_CLASSIFIER_PATH.exists():
        clf = load_classifier("demo", device="cpu")
        assert {p.device for p in clf.parameters()} == {torch.device("cpu")}


@pytest.mark.parametrize("argv", [a for a in COMPUTING if a[0] in ("project", "sweep")], ids=lambda a: a[0])
def test_sweep_and_project_take_compile(argv):
    assert build_parser().parse_args([*argv, "--compile"]).compile is True
    assert build_parser().parse_args(argv).compile is False
