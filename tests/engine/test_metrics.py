"""Classification metrics against hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from explain_engine.metrics.classification import (
    accuracy,
    auroc,
    brier_score,
    calibration_summary,
    classification_metrics,
    expected_calibration_error,
    reliability_table,
)


def brute_force_auroc(labels, scores) -> float:
    pos = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    neg = [s for y, s in zip(labels, scores, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_of_a_hand_computed_ranking():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly.
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auroc_counts_a_tie_as_half_a_pair():
    # Pairs: (0.5 vs 0.5) tie, (0.5 vs 0.2), (0.9 vs 0.5), (0.9 vs 0.2) -> 3.5 / 4.
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)


def test_auroc_is_one_half_when_every_score_ties():
    assert auroc([0, 1, 1, 0, 1], [0.3] * 5) == pytest.approx(0.5)


def test_auroc_is_one_for_a_perfect_ranking_and_zero_for_its_reverse():
    labels = [0, 0, 0, 1, 1]
    assert auroc(labels, [1, 2, 3, 4, 5]) == 1.0
    assert auroc(labels, [5, 4, 3, 2, 1]) == 0.0


def test_auroc_matches_pair_counting_on_data_with_many_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes ties common
    assert auroc(labels, scores) == pytest.approx(brute_force_auroc(labels, scores), abs=1e-12)


def test_auroc_is_undefined_with_one_class():
    with pytest.raises(ValueError, match="both classes"):
        auroc([1, 1, 1], [0.2, 0.5, 0.9])


def test_metrics_reject_labels_other_than_zero_and_one():
    with pytest.raises(ValueError, match="0 or 1"):
        auroc([0, 2, 1], [0.1, 0.2, 0.3])


def test_metrics_reject_mismatched_lengths_and_nan():
    with pytest.raises(ValueError, match="shape"):
        auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        auroc([0, 1], [0.1, float("nan")])


def test_accuracy_counts_one_half_as_a_positive_decision():
    assert accuracy([1, 0, 1, 0], [0.5, 0.49, 0.2, 0.9]) == pytest.approx(0.5)


def test_probabilities_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        accuracy([0, 1], [-0.1, 0.8])


def test_brier_score_of_a_hand_computed_case():
    assert brier_score([0, 1], [0.2, 0.9]) == pytest.approx((0.04 + 0.01) / 2)


def test_expected_calibration_error_of_a_hand_made_case():
    labels = [0, 1, 1, 1, 1, 0]
    probs = [0.05, 0.05, 0.95, 0.95, 0.55, 0.55]
    # Bin [0, .1): mean .05, observed .5 -> gap .45; bin [.5, .6): gap .05; bin [.9, 1]: mean .95, observed 1.
    expected = (2 * 0.45 + 2 * 0.05 + 2 * 0.05) / 6
    assert expected_calibration_error(labels, probs) == pytest.approx(expected)


def test_a_perfectly_calibrated_case_has_zero_ece():
    # Ten cases predicted 0.3 of which three are positive.
    assert expected_calibration_error([1, 1, 1] + [0] * 7, [0.3] * 10) == pytest.approx(0.0, abs=1e-12)


def test_reliability_bins_are_half_open_with_one_in_the_last_bin():
    table = reliability_table([0, 1, 1], [0.1, 0.0999, 1.0], n_bins=10)
    assert [b.count for b in table] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table[0].lower == 0.0 and table[-1].upper == 1.0
    assert math.isnan(table[3].mean_probability)


def test_calibration_summary_and_classification_metrics_are_json_ready():
    labels = [0, 1, 1, 0, 1, 0]
    probs = [0.1, 0.8, 0.6, 0.4, 0.95, 0.3]
    summary = calibration_summary(labels, probs)
    assert summary.n_bins == 10 and sum(b.count for b in summary.bins) == 6
    assert summary.brier == pytest.approx(brier_score(labels, probs))
    metrics = classification_metrics(labels, probs)
    assert metrics["auroc"] == 1.0 and metrics["accuracy"] == 1.0 and metrics["n"] == 6
    assert metrics["ece"] == pytest.approx(summary.ece)
    json.dumps(metrics)


def test_classification_metrics_report_nan_auroc_for_one_class():
    assert math.isnan(classification_metrics([1, 1], [0.7, 0.9])["auroc"])


def test_the_perceptual_distance_with_precomputed_target_features_is_the_same():
    """The projection computes its targets' features once per batch; the distance must not change."""
    from explain_engine.metrics.fidelity import PerceptualDistance

    torch.manual_seed(0)
    conv1, conv2 = torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 4, 3)

    def features(x):
        a = torch.relu(conv1(x))
        return {"a": a, "b": conv2(a)}

    distance = PerceptualDistance(features, prefer_lpips=False)
    a, b = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    reference = distance.reference(b)
    assert reference is not None and not any(f.requires_grad for f in reference.values())
    assert torch.equal(distance(a, b), distance(a, b, reference))
    assert not torch.equal(distance(a, b), distance(b, b))
