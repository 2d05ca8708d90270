"""Agreement of several readers per question, and the per-dimension verdicts of papers/003 3.2."""

import pytest
from django.urls import reverse

from reviewapp.selectors.agreement import majority, review_set_agreement, review_set_summary
from tests.factories import FactorAnnotationFactory, UserFactory
from tests.helpers.reviews import answer, answer_all, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def by_question(results):
    return {r.question: r for r in results}


def test_two_readers_get_cohens_kappa_on_the_items_both_answered(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=2, images_per_dimension=3)
    # Q1, items 1-6: bob y y n n y n; charlie y n n n y y -> kappa 1/3 (see test_kappa).
    bob_q1 = [True, True, False, False, True, False]
    charlie_q1 = [True, False, False, False, True, True]
    answer_all(review_set, bob, [{"q1_meaningful": v, "q2_pneumonia": "yes"} for v in bob_q1])
    answer_all(review_set, charlie, [{"q1_meaningful": v, "q2_pneumonia": "yes"} for v in charlie_q1])

    results = by_question(review_set_agreement(review_set=review_set))

    q1 = results["q1_meaningful"]
    assert q1.method == "Cohen's kappa"
    assert q1.kappa == pytest.approx(1 / 3)
    assert q1.observed == pytest.approx(4 / 6)
    assert (q1.items, q1.readers) == (6, 2)
    assert results["q2_pneumonia"].kappa is None  # everyone said yes: undefined
    assert "same answer" in results["q2_pneumonia"].note


def test_three_readers_get_fleiss_kappa(bob, charlie):
    dave = UserFactory(username="dave")
    review_set = review_set_with_items(readers=[bob, charlie, dave], dimensions=1, images_per_dimension=4)
    # Per item (yes/no counts): 3/0, 2/1, 0/3, 1/2 -> Fleiss kappa 1/3 (see test_kappa).
    answers = {
        bob: [True, True, False, False],
        charlie: [True, True, False, True],
        dave: [True, False, False, False],
    }
    for reader, q1 in answers.items():
        answer_all(review_set, reader, [{"q1_meaningful": v} for v in q1])

    q1 = by_question(review_set_agreement(review_set=review_set))["q1_meaningful"]

    assert q1.method == "Fleiss' kappa"
    assert q1.kappa == pytest.approx(1 / 3)
    assert (q1.items, q1.readers) == (4, 3)


def test_only_items_answered_by_every_reader_count(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=3)
    first, second, third = review_set.items.order_by("position")
    for item in (first, second, third):
        answer(item, bob)
    answer(first, charlie)
    answer(second, charlie, is_draft=True)

    q1 = by_question(review_set_agreement(review_set=review_set))["q1_meaningful"]

    assert q1.items == 1


def test_agreement_needs_two_readers(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)
    q1 = by_question(review_set_agreement(review_set=review_set))["q1_meaningful"]
    assert q1.kappa is None
    assert "two readers" in q1.note


def test_the_summary_counts_dimensions_and_items_a_majority_found_relevant(bob, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=2, images_per_dimension=2, randomise_order=False
    )
    # Dimension 1: both readers find items 1 and 2 relevant; dimension 2: only bob finds item 3 relevant.
    answer_all(review_set, bob, [{"q2_pneumonia": v} for v in ("yes", "early_change", "subtle", "no")])
    answer_all(review_set, charlie, [{"q2_pneumonia": v} for v in ("possible", "yes", "no", "no")])
    first_dimension = review_set.items.get(position=1).counterfactual.dimension
    for reader in (bob, charlie):
        FactorAnnotationFactory(
            review_set=review_set, dimension=first_dimension, reader=reader, clinical_relevance="yes"
        )

    summary = review_set_summary(review_set=review_set)

    assert summary.total_items == 4
    assert summary.relevant_items == 2  # item 3: one of two readers is not a majority
    first, second = summary.dimensions
    assert first.dimension == first_dimension
    assert first.source == "factors"
    assert first.clinically_meaningful and first.pneumonia_relevant
    assert [name for _, name in first.names] == ["right heart border blurring"] * 2
    assert second.source == "items"
    assert not second.pneumonia_relevant
    assert summary.meaningful_dimensions == 2  # every item was meaningful to both readers
    assert summary.relevant_dimensions == 1


def test_majority_says_split_on_a_tie():
    from collections import Counter

    assert majority(Counter({"yes": 2, "no": 1})) == "yes"
    assert majority(Counter({"yes": 1, "no": 1})) == "split"
    assert majority(Counter()) == ""


def test_the_results_page_shows_agreement_and_summary_to_admins(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)
    answer_all(review_set, charlie)

    response = alice_client.get(reverse("review-set-results", args=[review_set.pk]))

    assert response.status_code == 200
    assert "Cohen" in response.text or "Undefined" in response.text
    assert "of 1</strong> dimensions" in response.text


def test_reviewers_cannot_see_the_results(bob_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert bob_client.get(reverse("review-set-results", args=[review_set.pk])).status_code == 403
