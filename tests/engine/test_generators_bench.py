"""bench/generators.py: the oracle columns and the split FID computed from the counterfactual images a run keeps,
and the table they go into."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from explain_engine.classifiers import load_classifier
from explain_engine.counterfactuals.oracle import DEMO_ORACLE_PATH, load_oracle, oracle_features
from explain_engine.demo.phantoms import make_phantom_dataset
from explain_engine.demo.training.classifier import phantom_tensor
from explain_engine.metrics.fid import split_fid

BENCH = Path(__file__).resolve().parents[2] / "bench" / "generators.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_generators", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory, bench):
    """A fake run of 8 phantoms and two rows: an 'edit' whose counterfactuals are the queries darkened or
    brightened, saved in two chunks, and a saliency row."""
    folder = tmp_path_factory.mktemp("bench")
    images = phantom_tensor(make_phantom_dataset(8, size=64, seed=5, split="neutral"))
    classifier = load_classifier("demo")
    with torch.no_grad():
        targets = (classifier(images) < 0.5).long().tolist()
    shift = torch.tensor([0.3 if t == 1 else -0.3 for t in targets]).view(-1, 1, 1, 1)
    counterfactuals = (images + shift).clamp(-1, 1)
    files = []
    for start, stop in ((0, 5), (5, 8)):
        path = folder / f"{start:04d}-{stop:04d}.npz"
        bench._save_images(path, counterfactuals[start:stop])
        files.append(path)
    rows = [
        {"name": "edit", "saliency": False},
        {"name": "heatmap", "saliency": True},
    ]
    per_image = {
        "edit": [{"index": i, "reached_target": 1.0 if i % 2 else 0.0} for i in range(8)],
        "heatmap": [{"index": i} for i in range(8)],
    }
    info = bench.oracle_columns(
        str(DEMO_ORACLE_PATH),
        classifier,
        images,
        targets,
        rows,
        per_image,
        {"edit": files, "heatmap": [folder / "none.npz"]},
        folder / "features.npz",
    )
    return {
        "info": info,
        "rows": rows,
        "per_image": per_image,
        "images": images,
        "counterfactuals": counterfactuals,
        "targets": targets,
        "folder": folder,
    }


def test_the_saved_images_read_back_as_they_were(run):
    saved = np.concatenate([np.load(f)["counterfactuals"] for f in sorted(run["folder"].glob("0*.npz"))])
    assert np.array_equal(saved, run["counterfactuals"].numpy())


def test_every_counterfactual_gets_the_oracles_verdict_and_the_row_their_means(run):
    oracle = load_oracle()
    assert run["info"]["name"] == oracle.name
    with torch.no_grad():
        same = (oracle(run["images"]) >= 0.5) == (load_classifier("demo")(run["images"]) >= 0.5)
    assert run["info"]["query_agreement"] == pytest.approx(same.float().mean().item())
    edit = run["rows"][0]
    entries = run["per_image"]["edit"]
    for key in ("oracle_reached_target", "oracle_target_probability_change", "oracle_agreement"):
        assert all(key in e and math.isfinite(e[key]) for e in entries)
        assert edit[key] == pytest.approx(np.mean([e[key] for e in entries]))
    # "Confirmed" counts only the counterfactuals the explained classifier assigns to the target class.
    confirmed = [e["oracle_reached_target"] for e in entries if e["reached_target"] == 1]
    assert edit["oracle_confirmed"] == pytest.approx(np.mean(confirmed))
    # Saliency rows have no counterfactual to judge.
    assert "oracle_reached_target" not in run["rows"][1]
    assert all("oracle_reached_target" not in e for e in run["per_image"]["heatmap"])


def test_the_split_fid_can_be_recomputed_from_the_saved_features(run, bench):
    features = np.load(run["folder"] / "features.npz")
    oracle = load_oracle()
    assert np.allclose(features["queries_oracle"], oracle_features(oracle, run["images"]))
    assert np.allclose(features["edit_oracle"], oracle_features(oracle, run["counterfactuals"]))
    assert features["edit_classifier"].shape[0] == 8 and list(features["targets"]) == run["targets"]
    again = split_fid(features["edit_oracle"], features["queries_oracle"], seed=bench.FID_SPLIT_SEED)
    edit = run["rows"][0]
    assert edit["split_fid"] == pytest.approx(again.value)
    assert edit["split_fid_reference"] == pytest.approx(again.reference)
    assert edit["split_fid"] > 0 and edit["split_fid_reference"] > 0


def test_a_missing_oracle_leaves_the_columns_out_with_a_message(bench, tmp_path, capsys):
    rows = [{"name": "edit", "saliency": False}]
    images = torch.zeros(4, 1, 64, 64)
    info = bench.oracle_columns(
        str(tmp_path / "absent.pt"), None, images, [0, 1, 0, 1], rows, {"edit": []}, {}, tmp_path / "f.npz"
    )
    assert info is None and "oracle_reached_target" not in rows[0]
    assert "oracle classifier not found" in capsys.readouterr().err


def test_the_table_has_the_oracle_and_fid_columns_with_dashes_for_saliency(bench, run):
    rows = [
        dict(
            run["rows"][0],
            reached_target=1.0,
            target_probability_change=0.5,
            l1=0.1,
            ssim=0.9,
            mass_in_opacity=0.1,
            mass_in_lung=0.5,
            discriminator_logit=0.2,
            loss_estimate=-1.0,
            cout=0.3,
            seconds=2.0,
        ),
        dict(
            run["rows"][1],
            reached_target=math.nan,
            target_probability_change=math.nan,
            l1=math.nan,
            ssim=math.nan,
            mass_in_opacity=0.2,
            mass_in_lung=0.4,
            discriminator_logit=math.nan,
            loss_estimate=math.nan,
            cout=math.nan,
            seconds=0.1,
        ),
    ]
    reference = {"discriminator_logit": 1.5, "loss_estimate": -3.0, "split_fid": 12.345}
    lines = bench.markdown_table(rows, reference).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert {"oracle flip", "agreement", "oracle dP(target)", "split FID"} <= set(header)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    edit = dict(zip(header, [c.strip() for c in lines[2].strip("|").split("|")], strict=True))
    assert edit["oracle flip"] == f"{rows[0]['oracle_reached_target']:.2f}"
    assert edit["split FID"] == f"{rows[0]['split_fid']:.2f}"
    saliency = dict(zip(header, [c.strip() for c in lines[3].strip("|").split("|")], strict=True))
    assert saliency["oracle flip"] == saliency["split FID"] == saliency["agreement"] == "–"
    queries = dict(zip(header, [c.strip() for c in lines[4].strip("|").split("|")], strict=True))
    assert queries["split FID"] == "12.35" and queries["oracle flip"] == "–"
