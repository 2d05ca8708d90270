"""The engine's command line: info, ranges, project, sweep and select on a tiny generator."""

import numpy as np
import pytest
import torch
from PIL import Image

from explain_engine.checkpoints import save_networks
from explain_engine.cli import main
from explain_engine.stylegan2 import Discriminator, Generator
from tests.helpers.tiny import TINY_D, TINY_G


class Brightness(torch.nn.Module):
    def forward(self, x):
        return torch.sigmoid(4 * x.mean(dim=[1, 2, 3]))


def test_info_prints_the_paper256_style_counts(capsys):
    assert main(["info", "--preset", "paper256", "--channels", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "style dims: 7424" in out
    assert "conv dims: 4928" in out
    assert "torgb dims: 2496" in out
    assert "resolution: 256" in out and "channels: 1" in out


def test_info_on_a_file_that_is_not_a_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"nope")
    assert main(["info", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_ranges_project_sweep_select_from_the_command_line(tmp_path, capsys):
    torch.manual_seed(0)
    G = Generator(**TINY_G).eval()
    D = Discriminator(**TINY_D)
    net = save_networks(tmp_path / "net.pt", {"G_ema": G, "D": D})
    clf = tmp_path / "clf.ts"
    torch.jit.script(Brightness()).save(str(clf))
    images = tmp_path / "images"
    images.mkdir()
    with torch.no_grad():
        x = G.synthesize(G.mapping(torch.randn(2, 16)))
    for i in range(2):
        Image.fromarray(np.round((x[i, 0].numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)).save(
            images / f"case{i}.png"
        )

    assert (
        main(["ranges", str(net), "--out", str(tmp_path / "ranges.pt"), "--samples", "500", "--batch", "100"])
        == 0
    )
    assert (
        main(
            [
                "project",
                str(images),
                "--generator",
                str(net),
                "--discriminator",
                str(net),
                "--classifier",
                str(clf),
                "--ranges",
                str(tmp_path / "ranges.pt"),
                "--out",
                str(tmp_path / "proj"),
                "--steps",
                "100",
                "--lr",
                "0.1",
            ]
        )
        == 0
    )
    styles = np.load(tmp_path / "proj" / "styles.npy")
    assert styles.shape == (2, G.style_layout.dims)
    assert (tmp_path / "proj" / "0001_reconstruction.png").exists()
    assert "case0.png" in (tmp_path / "proj" / "fidelity.csv").read_text()
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "proj" / "styles.npy"),
                "--generator",
                str(net),
                "--classifier",
                str(clf),
                "--ranges",
                str(tmp_path / "ranges.pt"),
                "--out",
                str(tmp_path / "sweep"),
            ]
        )
        == 0
    )
    assert np.isfinite(np.load(tmp_path / "sweep" / "deltas.npy")).all()
    assert (
        main(
            [
                "select",
                str(tmp_path / "sweep"),
                "--generator",
                str(net),
                "--delta",
                "0.01",
                "--csv",
                str(tmp_path / "ranking.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "selected:" in out and "deltas in float32, tolerance 0" in out
    ranking = (tmp_path / "ranking.csv").read_text().splitlines()
    assert len(ranking) == G.style_layout.dims + 1
    assert "effect_lower" in ranking[0] and "frequency" in ranking[0] and "borderline_reason" in ranking[0]
    # The interval rule needs resamples: a clear error, not a traceback.
    with pytest.raises(SystemExit, match="resamples"):
        main(
            [
                "select",
                str(tmp_path / "sweep"),
                "--generator",
                str(net),
                "--rule",
                "interval",
                "--resamples",
                "0",
            ]
        )


def test_evaluate_gan_prints_the_measures_and_writes_the_samples_grid(tmp_path, capsys):
    torch.manual_seed(0)
    net = save_networks(tmp_path / "net.pt", {"G_ema": Generator(**TINY_G).eval()})
    grid = tmp_path / "figs" / "samples.png"
    args = ["evaluate-gan", str(net), "--real", "16", "--fake", "16", "--grid", str(grid)]
    assert main(args) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert float(lines["fid"]) >= 0 and 0 <= float(lines["precision"]) <= 1
    res = TINY_G["img_resolution"]
    assert Image.open(grid).size == (8 * res + 7 * 2, 3 * res + 2 * 2)
