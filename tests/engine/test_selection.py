"""Aggregation, selection and curation on hand-made delta arrays."""

import numpy as np
import pytest

from explain_engine.selection import CurationFilters, ImageFacts, bootstrap_effects, curate, select_dimensions
from explain_engine.stylegan2 import StyleLayer, StyleLayout

LAYOUT = StyleLayout(
    [StyleLayer("b4.conv1", 0, 4, "conv", 3, 0, 0), StyleLayer("b4.torgb", 0, 4, "torgb", 2, 3, 1)]
)


def hand_made():
    # 4 images x 5 dims x (Delta-, Delta+)
    d = np.zeros((4, 5, 2), np.float32)
    d[:, 1, 1] = [0.5, 0.4, 0.6, 0.3]  # dim 1: clamping high raises the score a lot (mean 0.45)
    d[:, 3, 0] = [0.4, 0.5, 0.2, 0.1]  # dim 3: clamping low lowers it (Delta- > 0), mean |.| 0.3
    d[:, 4, 1] = [-0.9, 0.0, 0.0, 0.0]  # dim 4: one big drop when clamped high, mean |.| 0.225
    return d


def test_mean_abs_selects_dimensions_above_delta_with_their_direction():
    sel = select_dimensions(hand_made(), LAYOUT, aggregate="mean_abs", delta=0.29)
    assert [e.dim for e in sel.selected] == [1, 3]
    top = sel.ranking[0]
    assert (top.dim, top.direction, top.raises_score, top.layer, top.channel) == (
        1,
        "high",
        True,
        "b4.conv1",
        1,
    )
    dim3 = sel.ranking[1]
    assert dim3.dim == 3 and dim3.direction == "low" and not dim3.raises_score
    assert dim3.effect == pytest.approx(0.3) and dim3.mean_low == pytest.approx(-0.3)
    last = {e.dim: e for e in sel.ranking}[4]
    assert last.kind == "torgb" and last.channel == 1 and last.max_abs == pytest.approx(0.9)
    assert len(sel.ranking) == 5 and [e.rank for e in sel.ranking] == list(range(5))


def test_fraction_and_mean_raise_aggregates():
    frac = select_dimensions(hand_made(), LAYOUT, aggregate="fraction", delta=0.3, min_fraction=0.4)
    assert [e.dim for e in frac.selected] == [1, 3]  # 4/4 and 2/4 of the images reach |0.3|; dim 4 only 1/4
    raise_ = select_dimensions(hand_made(), LAYOUT, aggregate="mean_raise", delta=0.3)
    assert [e.dim for e in raise_.selected] == [1]  # dim 3 lowers the score in both directions


def test_strongest_k_selects_the_strongest_dimensions_whatever_delta():
    sel = select_dimensions(hand_made(), LAYOUT, aggregate="mean_abs", delta=0.9, strongest_k=2)
    assert [e.dim for e in sel.selected] == [1, 3] and sel.strongest_k == 2
    assert not select_dimensions(hand_made(), LAYOUT, aggregate="mean_abs", delta=0.9).selected
    # Dimensions without any effect are never selected, even when K asks for more.
    assert [e.dim for e in select_dimensions(hand_made(), LAYOUT, strongest_k=5).selected] == [1, 3, 4]
    with pytest.raises(ValueError, match="strongest_k"):
        select_dimensions(hand_made(), LAYOUT, strongest_k=0)


def test_selection_over_a_subset_of_images():
    sel = select_dimensions(hand_made(), LAYOUT, delta=0.3, image_mask=np.array([1, 1, 0, 0], bool))
    assert {e.dim for e in sel.selected} == {1, 3, 4}  # dim 4's one big drop weighs more over two images
    assert sel.num_images == 2


def test_curation_orders_by_change_and_applies_filters():
    d = hand_made()
    sel = select_dimensions(d, LAYOUT, aggregate="mean_abs", delta=0.29)
    facts = ImageFacts(
        prob_original=np.array([0.95, 0.05, 0.5, 0.97]),
        prob_reconstruction=np.array([0.93, 0.3, 0.5, 0.96]),
        labels=np.array([1, 0, 1, 0]),
        psnr=np.array([30, 30, 30, 20.0]),
    )
    cur = curate(
        d, np.array([0.9, 0.1, 0.5, 0.9]), sel, facts, CurationFilters(images_per_dimension=5, min_psnr=25)
    )
    # image 0 is the only one the classifier gets right with confidence, a faithful reconstruction and a good PSNR
    assert cur.eligible.tolist() == [True, False, False, False]
    assert cur.dropped == {"confidence": 2, "psnr": 1, "prob_diff": 1}
    assert [c.image_index for c in cur.items[1]] == [0]
    no_filters = CurationFilters(
        images_per_dimension=2, min_confidence=0.0, min_psnr=None, max_prob_diff=None
    )
    cur2 = curate(d, np.zeros(4), sel, facts, no_filters)
    assert [c.image_index for c in cur2.items[1]] == [2, 0]
    assert [c.image_index for c in cur2.items[3]] == [1, 0] and cur2.items[3][0].change == pytest.approx(-0.5)


def test_bad_shapes_and_aggregates_are_refused():
    with pytest.raises(ValueError, match="deltas must be"):
        select_dimensions(np.zeros((2, 4, 2)), LAYOUT)
    with pytest.raises(ValueError, match="aggregate"):
        select_dimensions(hand_made(), LAYOUT, aggregate="median")


# ---------------------------------------------------------------------------------------------------------------
# Uncertainty: bootstrap intervals, selection rules, numeric tolerance


def noisy_deltas(seed=0, n=200):
    """n images x 5 dims: dim 0 steady well above 0.3, dim 1 mean just above 0.3 but spread out, dim 2 exactly
    0.31 on every image, dims 3-4 nothing."""
    rng = np.random.default_rng(seed)
    d = np.zeros((n, 5, 2), np.float32)
    d[:, 0, 1] = 0.6 + 0.01 * rng.standard_normal(n)
    d[: n * 8 // 25, 1, 1] = 0.95  # mean |change| 0.304, just above 0.3, with a large spread
    d[:, 2, 0] = 0.31
    return d


def reference_bootstrap(deltas, *, resamples, seed, block, confidence):
    """The same resamples drawn one by one with fancy indexing (slow, obvious)."""
    r = np.concatenate([-deltas[..., 0], deltas[..., 1]], axis=1).astype(np.float64)
    n = len(r)
    rng = np.random.default_rng(seed)
    effects, lows = [], []
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        for row in idx:
            agg = np.abs(r[row]).mean(0)
            lows.append(agg[:5])
            effects.append(np.maximum(agg[:5], agg[5:]))
    alpha = (1 - confidence) / 2
    return np.quantile(effects, [alpha, 1 - alpha], axis=0), np.quantile(lows, [alpha, 1 - alpha], axis=0)


def test_bootstrap_matches_a_resample_by_resample_reference_and_is_seeded():
    d = noisy_deltas()
    boot = bootstrap_effects(d, aggregate="mean_abs", delta=0.3, resamples=300, seed=3, block=64)
    (lo, hi), (low_lo, low_hi) = reference_bootstrap(d, resamples=300, seed=3, block=64, confidence=0.9)
    np.testing.assert_allclose(boot["effect_lower"], lo, atol=1e-5)
    np.testing.assert_allclose(boot["effect_upper"], hi, atol=1e-5)
    np.testing.assert_allclose(boot["low_lower"], low_lo, atol=1e-5)
    np.testing.assert_allclose(boot["low_upper"], low_hi, atol=1e-5)
    again = bootstrap_effects(d, aggregate="mean_abs", delta=0.3, resamples=300, seed=3, block=64)
    assert all(np.array_equal(boot[k], again[k]) for k in boot)
    other = bootstrap_effects(d, aggregate="mean_abs", delta=0.3, resamples=300, seed=4, block=64)
    assert not np.array_equal(boot["effect_lower"], other["effect_lower"])
    # A constant column has a zero-width interval and is selected in every resample or none.
    assert boot["effect_lower"][2] == pytest.approx(0.31) and boot["effect_upper"][2] == pytest.approx(0.31)
    assert boot["frequency"][0] == 1.0 and boot["frequency"][2] == 1.0 and boot["frequency"][3] == 0.0
    assert 0.2 < boot["frequency"][1] < 0.8  # sits on the threshold
    assert boot["frequency_low"][2] == 1.0 and boot["frequency_high"][2] == 0.0


def test_bootstrap_of_the_fraction_ignores_missing_deltas_and_ranks_for_strongest_k():
    d = noisy_deltas()
    d[:100, 3, 1] = np.nan  # half the images lack dim 3; the rest change by 0.5
    d[100:, 3, 1] = 0.5
    boot = bootstrap_effects(d, aggregate="fraction", delta=0.3, threshold=0.5, resamples=200)
    assert boot["effect_lower"][3] == 1.0 and boot["frequency"][3] == 1.0
    top = bootstrap_effects(d, aggregate="mean_abs", strongest_k=1, resamples=200)
    assert top["frequency"][0] == 1.0 and top["frequency"][1:].sum() == 0.0


def test_interval_rule_lists_a_dimension_on_the_threshold_as_borderline():
    d = noisy_deltas()
    point = select_dimensions(d, LAYOUT, delta=0.3, rule="estimate", resamples=500)
    interval = select_dimensions(d, LAYOUT, delta=0.3, rule="interval", resamples=500)
    effect1 = point.ranking[[e.dim for e in point.ranking].index(1)]
    assert effect1.effect_lower < 0.3 < effect1.effect_upper
    assert {e.dim for e in interval.selected} == {0, 2}
    assert [e.dim for e in interval.borderline] == [1]
    assert "interval" in interval.borderline[0].borderline_reason
    assert interval.rule == "interval" and interval.threshold == 0.3
    # The estimate rule selects dim 1 whenever its mean is above delta; the interval and frequency say how firmly.
    assert effect1.effect == pytest.approx(0.304) and 1 in {e.dim for e in point.selected}
    assert 0.2 < effect1.frequency < 0.8 and not point.borderline
    for e in point.ranking:
        assert e.effect_lower <= e.effect + 1e-6 and e.effect <= e.effect_upper + 1e-6


def test_tolerance_never_lets_a_dimension_within_it_flip_silently():
    d = noisy_deltas()
    exact = select_dimensions(d, LAYOUT, delta=0.3, resamples=0)
    assert 2 in {e.dim for e in exact.selected} and not exact.borderline  # 0.31 > 0.3
    bf16 = select_dimensions(d, LAYOUT, delta=0.3, resamples=0, tolerance=0.027)
    assert 2 not in {e.dim for e in bf16.selected}
    dim2 = next(e for e in bf16.borderline if e.dim == 2)
    assert "tolerance 0.027" in dim2.borderline_reason
    assert np.isnan(dim2.effect_lower) and np.isnan(dim2.frequency)  # no resampling asked for
    # Just under the threshold is borderline as well; beyond the tolerance it is not.
    d[:, 2, 0] = 0.29
    near = select_dimensions(d, LAYOUT, delta=0.3, resamples=0, tolerance=0.027)
    assert 2 in {e.dim for e in near.borderline} and 2 not in {e.dim for e in near.selected}
    tight = select_dimensions(d, LAYOUT, delta=0.3, resamples=0, tolerance=0.005)
    assert 2 not in {e.dim for e in tight.borderline} and 2 not in {e.dim for e in tight.selected}


def test_tolerance_with_the_fraction_aggregate_moves_delta():
    d = np.zeros((10, 5, 2), np.float32)
    d[:4, 0, 1] = 0.31  # 40 % of the images just above delta, counted or not depending on the error
    exact = select_dimensions(d, LAYOUT, aggregate="fraction", delta=0.3, min_fraction=0.3, resamples=0)
    assert [e.dim for e in exact.selected] == [0]
    bf16 = select_dimensions(
        d, LAYOUT, aggregate="fraction", delta=0.3, min_fraction=0.3, resamples=0, tolerance=0.02
    )
    assert not bf16.selected and [e.dim for e in bf16.borderline] == [0]


def test_selection_parameters_are_checked():
    with pytest.raises(ValueError, match="resamples"):
        select_dimensions(hand_made(), LAYOUT, rule="interval", resamples=0)
    with pytest.raises(ValueError, match="rule"):
        select_dimensions(hand_made(), LAYOUT, rule="median")
    with pytest.raises(ValueError, match="tolerance"):
        select_dimensions(hand_made(), LAYOUT, tolerance=-0.1)
    with pytest.raises(ValueError, match="confidence"):
        select_dimensions(hand_made(), LAYOUT, confidence=1.0)
