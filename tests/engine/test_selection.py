"""Aggregation, selection and curation on hand-made delta arrays."""

import numpy as np
import pytest

from explain_engine.selection import CurationFilters, ImageFacts, curate, select_dimensions
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
