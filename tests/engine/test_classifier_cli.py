"""The classifier commands of the engine CLI: evaluate on labelled PNGs or phantoms, train a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from explain_engine.classifiers import load_classifier
from explain_engine.cli import main
from explain_engine.demo.phantoms import make_phantom_dataset


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory):
    """Twelve phantom PNGs (8-bit and 16-bit) with labels.csv; the last four belong to split 'test'."""
    folder = tmp_path_factory.mktemp("cases")
    ds = make_phantom_dataset(12, size=128, seed=21, split="neutral")
    rows = ["filename,label,split"]
    for i, (image, label) in enumerate(zip(ds.images, ds.labels, strict=True)):
        name = f"case{i:02d}.png"
        if i % 2:
            Image.fromarray(image.astype(np.uint16) * 257).save(folder / name)  # 16-bit grey
        else:
            Image.fromarray(image).save(folder / name)
        rows.append(f"{name},{label},{'test' if i >= 8 else 'dev'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder, ds


def test_evaluate_classifier_on_a_folder_of_pngs(case_folder, capsys, tmp_path):
    folder, ds = case_folder
    out_json = tmp_path / "metrics.json"
    assert (
        main(["evaluate-classifier", "--classifier", "demo", "--cases", str(folder), "--json", str(out_json)])
        == 0
    )
    out = capsys.readouterr().out
    assert "auroc: " in out and "accuracy: " in out and "ece: " in out and "brier: " in out
    assert "cases: 12" in out
    # The printed metrics are those of the classifier on the same images.
    demo = load_classifier("demo")
    with torch.no_grad():
        probs = demo(torch.from_numpy(ds.images_float()).unsqueeze(1) * 2 - 1).numpy()
    accuracy = float(((probs >= 0.5) == ds.labels).mean())
    assert f"accuracy: {accuracy:.4f}" in out
    saved = json.loads(out_json.read_text())
    assert saved["n"] == 12 and len(saved["reliability"]) == 10


def test_evaluate_classifier_on_one_split_of_the_folder(case_folder, capsys):
    folder, _ = case_folder
    assert (
        main(["evaluate-classifier", "--classifier", "demo", "--cases", str(folder), "--split", "test"]) == 0
    )
    assert "cases: 4" in capsys.readouterr().out


def test_evaluate_classifier_on_fresh_phantoms(capsys):
    assert (
        main(["evaluate-classifier", "--classifier", "demo", "--phantoms", "24", "--split", "flipped"]) == 0
    )
    out = capsys.readouterr().out
    assert "24 flipped phantoms" in out and "auroc: " in out


def test_evaluate_classifier_measures_the_pull_of_the_shortcut(tmp_path, capsys):
    out_json = tmp_path / "m.json"
    args = ["evaluate-classifier", "--classifier", "demo", "--phantoms", "8", "--size", "64"]
    assert main([*args, "--shortcut-reliance", "12", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "shortcut reliance (12 neutral phantoms" in out
    rel = json.loads(out_json.read_text())["shortcut_reliance"]
    # The shipped classifier was trained with the look tied to pneumonia: switching it on raises the score.
    assert rel["phantoms"] == 12 and rel["mean_change"] > 0.05
    assert main([*args, "--shortcut-reliance", "0"]) == 2
    assert "at least 1 phantom" in capsys.readouterr().err


def test_evaluate_classifier_reports_a_missing_xrv_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["evaluate-classifier", "--classifier", "xrv:densenet121-res224-all", "--phantoms", "4"])
    assert code == 2
    assert ".torchxrayvision/models_data" in capsys.readouterr().err


def test_evaluate_classifier_reports_a_bad_label(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("filename,label,split\na.png,yes,test\n")
    assert main(["evaluate-classifier", "--classifier", "demo", "--cases", str(tmp_path)]) == 2
    assert "label must be 0 or 1" in capsys.readouterr().err


def test_train_classifier_writes_a_checkpoint_and_its_metrics(tmp_path, capsys):
    out = tmp_path / "clf.pt"
    args = [
        "train-classifier",
        "--out",
        str(out),
        "--size",
        "64",
        "--train",
        "32",
        "--val",
        "16",
        "--epochs",
        "1",
        "--batch",
        "16",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "val: auroc" in printed and "flipped: auroc" in printed
    metrics = json.loads((tmp_path / "clf.pt.metrics.json").read_text())
    assert metrics["data"]["train_phantoms"] == 32 and metrics["steps"] == 2
    classifier = load_classifier(out)
    assert classifier.input_size == (64, 64)
