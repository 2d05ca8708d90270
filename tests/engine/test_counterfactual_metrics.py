"""Counterfactual metrics on hand-made cases whose values can be computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from explain_engine.counterfactuals import CounterfactualError, counterfactual_metrics, cout_score
from explain_engine.counterfactuals.evaluation import explanation_locality
from tests.helpers.tiny import tiny_discriminator


class MeanIntensity(nn.Module):
    """P(label) = the mean intensity on the [0, 1] scale: replacing k of P dark pixels by white ones raises it by
    exactly k / P, which makes COUT computable by hand."""

    target = "Pneumonia"

    def forward(self, images):
        return ((images + 1) / 2).mean(dim=(1, 2, 3))


class MeanIntensityWithEstimator(MeanIntensity):
    def loss_estimate(self, images):
        return images.square().mean(dim=(1, 2, 3))


def dark(size: int = 8) -> torch.Tensor:
    return torch.full((1, size, size), -1.0)


def test_cout_of_a_counterfactual_that_changes_a_quarter_of_the_pixels():
    query, cf = dark(), dark()
    cf[:, :4, :4] = 1.0  # 16 of 64 pixels turn white: P rises to 0.25
    # Swapped pixels in the order of |difference|: the 16 changed ones first, so after a fraction t of all
    # pixels P_t = min(t, 1/4) and s(t) = 2 P_t - 1. Area: 2 * (1/32 + 3/16) - 1 = -0.5625 (exact, since the
    # grid of 8 steps contains the kink at t = 1/4).
    curve = cout_score(MeanIntensity(), query, cf, target=1, steps=8)
    assert curve.score == pytest.approx(-0.5625, abs=1e-9)
    assert curve.fractions.tolist() == [k / 8 for k in range(9)]
    assert curve.scores[0] == pytest.approx(-1.0) and curve.scores[-1] == pytest.approx(-0.5)


def test_cout_is_zero_when_the_probability_rises_linearly_and_symmetric_in_the_target():
    query, cf = dark(), -dark()
    assert cout_score(MeanIntensity(), query, cf, target=1, steps=16).score == pytest.approx(0.0, abs=1e-9)
    # Toward target 0 from a white image: the same curve seen from the other class.
    white, part = -dark(), -dark()
    part[:, :4, :4] = -1.0
    assert cout_score(MeanIntensity(), white, part, target=0, steps=8).score == pytest.approx(
        -0.5625, abs=1e-9
    )


def test_cout_swaps_the_most_changed_pixels_first():
    # Two changes: 8 pixels by +2 (to white) and 8 pixels by +0.5; the large ones come first.
    query, cf = dark(), dark()
    cf[:, 0, :] = 1.0
    cf[:, 1, :] = -0.5
    curve = cout_score(MeanIntensity(), query, cf, target=1, steps=8)
    # after 1/8 of the pixels: the 8 white ones, P = 8 / 64; after 2/8: plus 8 * 0.25 / 64
    assert ((curve.scores[1:3] + 1) / 2).tolist() == pytest.approx([8 / 64, 10 / 64])


def test_locality_fractions_of_an_edit_with_known_masks():
    query = torch.full((1, 16, 16), -1.0)
    cf = query.clone()
    cf[:, 0:4, 0:4] += 0.5  # an edit of 0.25 on the [0, 1] scale, inside the lung, half of it in the opacity
    cf[:, 0:4, 8:12] += 1.0  # an edit of 0.5, outside the lung
    lung = torch.zeros(16, 16, dtype=torch.bool)
    lung[:, :8] = True
    opacity = torch.zeros(16, 16, dtype=torch.bool)
    opacity[0:2, 0:4] = True
    m = counterfactual_metrics(
        query,
        cf,
        classifier=MeanIntensity(),
        target=1,
        lung_mask=lung,
        opacity_mask=opacity.numpy(),
        perceptual=None,
        cout_steps=0,
    )
    assert m["changed_fraction"] == 32 / 256
    assert m["changed_in_lung"] == pytest.approx(16 / 32)
    assert m["mass_in_lung"] == pytest.approx(16 * 0.25 / (16 * 0.25 + 16 * 0.5))
    assert m["changed_in_opacity"] == pytest.approx(8 / 32)
    assert m["mass_in_opacity"] == pytest.approx(8 * 0.25 / (16 * 0.25 + 16 * 0.5))
    assert m["pointing_game_opacity"] == 0.0  # the largest edit lies outside the opacity
    assert m["lung_area_fraction"] == 0.5 and m["opacity_area_fraction"] == 8 / 256


def test_locality_is_measured_from_the_reconstruction_when_there_is_one():
    query = torch.full((1, 16, 16), -1.0)
    reconstruction = query + 0.2  # the method's rendering of the query is off everywhere...
    cf = reconstruction.clone()
    cf[:, 4:8, 4:8] += 0.6  # ...and its edit is one square
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[4:8, 4:8] = True
    m = counterfactual_metrics(
        query,
        cf,
        classifier=MeanIntensity(),
        target=1,
        reference=reconstruction,
        opacity_mask=mask,
        perceptual=None,
        cout_steps=0,
    )
    assert m["mass_in_opacity"] == pytest.approx(1.0) and m["changed_fraction"] == 16 / 256
    assert m["l1"] == pytest.approx((0.1 * 240 + 0.4 * 16) / 256)  # proximity is still to the query


def test_heatmap_locality_and_the_pointing_game():
    heatmap = torch.zeros(8, 8)
    heatmap[1, 1] = 1.0
    heatmap[5, 5] = 0.5
    heatmap[6, 6] = 0.25
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[0:3, 0:3] = True
    out = explanation_locality(heatmap, changed=heatmap >= 0.5, opacity_mask=mask)
    assert out["mass_in_opacity"] == pytest.approx(1 / 1.75)
    assert out["changed_in_opacity"] == 0.5 and out["pointing_game_opacity"] == 1.0
    assert math.isnan(out["mass_in_lung"]) and math.isnan(out["changed_in_lung"])


def test_validity_and_proximity_of_a_uniform_brightening():
    query = torch.full((1, 8, 8), -0.2)  # P = 0.4
    cf = query + 0.4  # P = 0.6: the decision flips to the label
    m = counterfactual_metrics(
        query, cf, classifier=MeanIntensity(), target=1, perceptual=None, cout_steps=0, seconds=1.5
    )
    assert m["probability_query"] == pytest.approx(0.4) and m["probability"] == pytest.approx(0.6)
    assert m["probability_change"] == pytest.approx(0.2) and m["target_probability_change"] == pytest.approx(
        0.2
    )
    assert m["flipped"] == 1.0 and m["reached_target"] == 1.0
    assert m["l1"] == pytest.approx(0.2) and m["l2"] == pytest.approx(0.2)
    assert m["ssim"] < 1 and m["seconds"] == 1.5
    toward_zero = counterfactual_metrics(
        query, cf, classifier=MeanIntensity(), target="no pneumonia", perceptual=None, cout_steps=0
    )
    assert (
        toward_zero["target_probability_change"] == pytest.approx(-0.2) and toward_zero["reached_target"] == 0
    )


def test_realism_from_a_discriminator_and_a_loss_estimator():
    D = tiny_discriminator(seed=0)
    query = torch.rand(1, 8, 8) * 2 - 1  # resized to D's 16 x 16
    cf = query * 0.5
    m = counterfactual_metrics(
        query,
        cf,
        classifier=MeanIntensityWithEstimator(),
        target=1,
        discriminator=D,
        perceptual=None,
        cout_steps=0,
    )
    assert math.isfinite(m["discriminator_logit"]) and math.isfinite(m["discriminator_logit_query"])
    assert D.b4.mbstd.group_size == 4  # restored
    assert m["loss_estimate"] == pytest.approx(float(cf.square().mean()), rel=1e-5)
    assert m["loss_estimate_query"] == pytest.approx(float(query.square().mean()), rel=1e-5)
    plain = counterfactual_metrics(
        query, cf, classifier=MeanIntensity(), target=1, perceptual=None, cout_steps=0
    )
    assert math.isnan(plain["discriminator_logit"]) and math.isnan(plain["loss_estimate"])


def test_bad_inputs_are_refused_with_clear_errors():
    query = dark()
    with pytest.raises(CounterfactualError, match="same shape"):
        counterfactual_metrics(query, dark(4), classifier=MeanIntensity(), target=1)
    with pytest.raises(CounterfactualError, match=r"lung_mask must be \[H, W\]"):
        counterfactual_metrics(
            query, query, classifier=MeanIntensity(), target=1, lung_mask=np.ones((4, 4)), perceptual=None
        )
    with pytest.raises(CounterfactualError, match="target must be"):
        counterfactual_metrics(query, query, classifier=MeanIntensity(), target="maybe")
    with pytest.raises(CounterfactualError, match=r"must be in \[-1, 1\]"):
        cout_score(MeanIntensity(), query * 255, query, target=1)
    with pytest.raises(CounterfactualError, match="steps"):
        cout_score(MeanIntensity(), query, query, target=1, steps=0)
