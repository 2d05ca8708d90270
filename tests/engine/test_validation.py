"""The ground-truth check of the demo (explain_engine.demo.validation): verdicts, where a change falls, and the
classifier's reliance on the planted shortcut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain_engine.demo import phantoms
from explain_engine.demo.validation import (
    DimensionTruth,
    ValidationReport,
    _change_statistics,
    shortcut_reliance,
    verdict,
)
from explain_engine.projection import ProjectionConfig


@pytest.mark.parametrize(
    ("pathology", "shortcut", "expected"),
    [
        (0.3, 0.02, "pathology"),
        (0.02, 0.3, "shortcut"),
        (0.2, 0.15, "both"),
        (0.4, 0.12, "pathology"),  # both above the threshold, but one more than twice the other
        (0.05, 0.05, "other"),
    ],
)
def test_verdicts_follow_the_probe_thresholds(pathology, shortcut, expected):
    assert verdict(pathology, shortcut) == expected


def test_a_change_inside_the_opacity_is_counted_there_and_in_the_lung_bases():
    lungs = np.zeros((2, 8, 8), bool)
    lungs[:, 2:8, 1:7] = True  # lung rows 2..7: the bases are rows 5..7 (at or below the mean row, 4.5)
    opacity = np.zeros((2, 8, 8), bool)
    opacity[0, 6:8, 2:4] = True
    delta = np.zeros((2, 8, 8))
    delta[0, 6:8, 2:4] = 1.0  # positive image: all of the change inside its opacity, in the bases
    delta[1, 0, :] = 1.0  # negative image: all of it above the lungs
    st = _change_statistics(delta, opacity.astype(float), lungs, np.array([1, 0]))
    assert st["share_in_opacity"] == pytest.approx(1.0)
    assert st["opacity_area"] == pytest.approx(4 / 64)
    assert st["share_in_lungs"] == pytest.approx(0.5)  # 1.0 for the first image, 0.0 for the second
    assert st["share_in_bases"] == pytest.approx(0.5)
    assert st["spread"] == pytest.approx(np.mean([4 / 64, 8 / 64]), abs=1 / 64)


class _MeanBrightness(torch.nn.Module):
    def forward(self, x):
        return torch.sigmoid(8 * x.mean(dim=(1, 2, 3)))


def test_shortcut_reliance_compares_the_same_phantom_with_and_without_the_shortcut():
    clf = _MeanBrightness()
    got = shortcut_reliance(clf, 32, n=3, seed=9)
    on = [
        phantoms.make_phantom(9, index=i, size=32, split="neutral", portable_ap=True).image for i in range(3)
    ]
    off = [
        phantoms.make_phantom(9, index=i, size=32, split="neutral", portable_ap=False).image for i in range(3)
    ]
    assert not np.allclose(on[0], off[0])  # the look changes the image
    change = [
        float(clf(torch.from_numpy(a)[None, None] * 2 - 1) - clf(torch.from_numpy(b)[None, None] * 2 - 1))
        for a, b in zip(on, off, strict=True)
    ]
    assert got["phantoms"] == 3
    assert got["mean_change"] == pytest.approx(np.mean(change), abs=1e-6)
    assert got["mean_abs_change"] == pytest.approx(np.mean(np.abs(change)), abs=1e-6)


def test_a_classifier_blind_to_the_shortcut_does_not_rely_on_it():
    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.full((len(x),), 0.7)

    got = shortcut_reliance(Constant(), 32, n=2)
    assert got["mean_abs_change"] == 0.0
    assert got["fraction_abs_change_at_least_0.1"] == 0.0


def test_the_projection_is_saved_per_chunk_and_an_interrupted_run_resumes(tmp_path, monkeypatch):
    from explain_engine.demo import validation
    from explain_engine.ranges import estimate_style_ranges
    from tests.engine.test_projection import MeanBrightness
    from tests.helpers.tiny import tiny_generator

    G = tiny_generator()
    ranges = estimate_style_ranges(G, num_samples=200, batch_size=100)
    ds = phantoms.make_phantom_dataset(5, size=16, seed=3, split="val")
    monkeypatch.setattr(validation, "PROJECTION_CHUNK", 2)
    folder = tmp_path / "projection"
    real_project = validation.project_images
    calls = []

    def project_then_fail(x, *args, **kwargs):
        if calls:  # the second chunk: the run is interrupted
            raise KeyboardInterrupt
        calls.append(len(x))
        return real_project(x, *args, **kwargs)

    monkeypatch.setattr(validation, "project_images", project_then_fail)
    with pytest.raises(KeyboardInterrupt):
        validation._project_in_chunks(
            ds, G, None, MeanBrightness(), ranges, folder, ProjectionConfig(steps=3), None
        )
    assert sorted(p.name for p in folder.iterdir()) == ["00000-00002.pt"]  # no half-written chunk

    resumed = []
    monkeypatch.setattr(
        validation, "project_images", lambda x, *a, **k: resumed.append(len(x)) or real_project(x, *a, **k)
    )
    styles, fidelity = validation._project_in_chunks(
        ds, G, None, MeanBrightness(), ranges, folder, ProjectionConfig(steps=3), None
    )
    assert resumed == [2, 1]  # the first chunk was not projected again
    assert styles.shape == (5, G.style_layout.dims)
    assert len(fidelity["psnr"]) == 5 and fidelity["steps"] == 3
    monkeypatch.setattr(validation, "project_images", project_then_fail)
    again, _ = validation._project_in_chunks(
        ds, G, None, MeanBrightness(), ranges, folder, ProjectionConfig(steps=3), None
    )
    assert torch.equal(again, styles)  # everything is read back, nothing projected


def _row(dim: int, selected: bool, verdict_: str) -> DimensionTruth:
    fields = {f: 0.0 for f in DimensionTruth.__dataclass_fields__}
    fields.update(
        dim=dim, layer="b8.conv0", channel=dim, direction="low", selected=selected, verdict=verdict_
    )
    return DimensionTruth(**fields)


@pytest.mark.parametrize(
    ("rows", "found", "met"),
    [
        ([(1, True, "pathology"), (2, True, "shortcut"), (3, False, "shortcut")], ([1], [2]), True),
        ([(1, True, "both")], ([1], [1]), True),
        (
            [(1, True, "pathology"), (2, False, "shortcut")],
            ([1], []),
            False,
        ),  # the shortcut ranks but is not selected
        ([(1, True, "other"), (2, True, "shortcut")], ([], [2]), False),
    ],
)
def test_the_expectation_needs_a_selected_pathology_and_a_selected_shortcut_dimension(rows, found, met):
    report = ValidationReport(
        num_images=10, selected=2, dims=8, rows=[_row(*r) for r in rows], fidelity={}, probes={}
    )
    assert (report.found["pathology"], report.found["shortcut"]) == found
    assert report.expectation_met is met


def test_the_cache_key_changes_with_the_weights_and_the_projection_settings():
    from explain_engine.demo.validation import _run_key
    from tests.engine.test_projection import MeanBrightness
    from tests.helpers.tiny import tiny_generator

    G, clf = tiny_generator(), torch.nn.Linear(2, 1)
    key = _run_key(G, clf, ProjectionConfig(steps=10))
    assert key == _run_key(G, clf, ProjectionConfig(steps=10))
    assert key != _run_key(G, clf, ProjectionConfig(steps=10, lr=0.01))
    with torch.no_grad():
        clf.weight.add_(1.0)  # a retrained classifier
    assert key != _run_key(G, clf, ProjectionConfig(steps=10))
    assert len(key) == 10 and _run_key(G, MeanBrightness(), ProjectionConfig())  # parameter-free models work
