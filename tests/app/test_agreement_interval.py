"""Kappa comes with a 95 % interval and says when it rests on too few items; verdicts say who rated."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.urls import reverse

from reviewapp.agreement import MIN_KAPPA_ITEMS, kappa, kappa_interval
from reviewapp.selectors.agreement import review_set_agreement
from tests.factories import FactorAnnotationFactory
from tests.helpers.reviews import answer, answer_all, review_set_with_items


def reference_interval(ratings, *, resamples=1000, seed=0):
    """The same bootstrap, one resample at a time through kappa()."""
    n = len(ratings)
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = [kappa([ratings[i] for i in row])[1] for row in picks]
    values = [v for v in values if v is not None]
    return tuple(np.percentile(values, [2.5, 97.5]))


@pytest.mark.parametrize(("readers", "categories"), [(2, "ab"), (2, "abcdef"), (3, "ab"), (4, "abc")])
def test_the_interval_is_the_bootstrap_of_kappa_itself(readers, categories):
    rng = random.Random(readers * 7 + len(categories))
    truth = [rng.choice(categories) for _ in range(40)]
    ratings = [[x if rng.random() < 0.7 else rng.choice(categories) for _ in range(readers)] for x in truth]

    low, high = kappa_interval(ratings)

    assert (low, high) == pytest.approx(reference_interval(ratings), abs=1e-9)
    assert -1.0 <= low <= kappa(ratings)[1] <= high <= 1.0


def test_more_items_give_a_narrower_interval():
    # 12 items, 3 disagreements; then the same answers 30 times over: the same kappa on more evidence.
    pattern = [["a", "a"]] * 5 + [["b", "b"]] * 4 + [["a", "b"], ["b", "a"], ["a", "b"]]

    few_low, few_high = kappa_interval(pattern)
    many_low, many_high = kappa_interval(pattern * 30)

    assert kappa(pattern)[1] == pytest.approx(kappa(pattern * 30)[1])
    assert many_high - many_low < (few_high - few_low) / 3


def test_no_interval_from_one_item_or_identical_answers():
    assert kappa_interval([["yes", "no"]]) is None
    assert kappa_interval([["yes", "yes"]] * 20) is None


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
def test_one_shared_item_is_reported_as_too_few_not_as_slight(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    first = review_set.items.order_by("position").first()
    answer(first, bob, q1_meaningful=True, q2_pneumonia="yes")
    answer(first, charlie, q1_meaningful=False, q2_pneumonia="no")

    q1 = {r.question: r for r in review_set_agreement(review_set=review_set)}["q1_meaningful"]

    assert q1.kappa == pytest.approx(0.0)
    assert q1.items == 1
    assert q1.too_few_items
    assert q1.strength == "too few items"
    assert f"at least {MIN_KAPPA_ITEMS}" in q1.note
    assert q1.interval is None


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
def test_the_results_page_shows_the_interval_and_who_rated_each_factor(alice_client, bob, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=2, images_per_dimension=6, randomise_order=False
    )
    bob_q1 = [True, True, False, False, True, False, True, True, False, True, False, True]
    charlie_q1 = [True, False, False, False, True, True, True, True, False, True, True, True]
    answer_all(review_set, bob, [{"q1_meaningful": v, "q2_pneumonia": "yes"} for v in bob_q1])
    answer_all(review_set, charlie, [{"q1_meaningful": v, "q2_pneumonia": "no"} for v in charlie_q1])
    rated = review_set.items.get(position=1).counterfactual.dimension
    FactorAnnotationFactory(review_set=review_set, dimension=rated, reader=bob, clinical_relevance="yes")

    page = alice_client.get(reverse("review-set-results", args=[review_set.pk])).content.decode()
    csv = alice_client.get(reverse("export-agreement", args=[review_set.pk]))
    text = b"".join(csv.streaming_content).decode()

    assert "95% CI" in page
    assert "from the factor ratings of 1 of 2 readers" in page
    assert "from the items: no reader rated the factor" in page
    assert "by a majority of the readers who rated the" in page
    header, q1_row = text.splitlines()[:2]
    assert header.endswith("kappa_ci_low,kappa_ci_high")
    low, high = (float(v) for v in q1_row.split(",")[-2:])
    assert low <= high


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
def test_a_dimension_judged_neither_meaningful_nor_relevant_says_so(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=2, images_per_dimension=2)
    first, second = review_set.sweep.dimension_effects.order_by("rank")
    for reader in (bob, charlie):
        for item in review_set.items.order_by("position"):
            judged = item.counterfactual.dimension == second
            answer(item, reader, q1_meaningful=judged, q2_pneumonia="yes" if judged else "no")

    page = alice_client.get(reverse("review-set-results", args=[review_set.pk])).content.decode()
    rows = {dim: page.split(f"<td>{dim.dim}</td>", 1)[1].split("</tr>", 1)[0] for dim in (first, second)}

    assert '<span class="tag">neither</span>' in rows[first]
    assert "meaningful</span>" not in rows[first]
    assert '<span class="tag">neither</span>' not in rows[second]
    assert '<span class="tag done">meaningful</span>' in rows[second]
