"""Naming a latent factor once all of its items are answered; blinded sets call it by a letter."""

import pytest
from django.urls import reverse

from reviewapp.models import FactorAnnotation
from reviewapp.selectors.reviews import factor_label, reader_factor_groups
from tests.helpers.reviews import answer, assignment_of, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

NAMED = {
    "factor_name": "blurring of the right heart border",
    "clinical_relevance": "yes",
    "pneumonia_relevance": "possible",
}


def test_factor_labels_are_letters():
    assert [factor_label(n) for n in (1, 2, 26, 27, 28)] == [
        "Factor A", "Factor B", "Factor Z", "Factor AA", "Factor AB",
    ]  # fmt: skip


def test_groups_follow_the_order_in_which_the_reader_meets_the_dimensions(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=3, images_per_dimension=2)
    first_item = items_in_reader_order(review_set, bob)[0]

    groups = reader_factor_groups(assignment=assignment_of(review_set, bob))

    assert [g.label for g in groups] == ["Factor A", "Factor B", "Factor C"]
    assert groups[0].dimension == first_item.counterfactual.dimension
    assert 1 in groups[0].positions
    assert sorted(p for g in groups for p in g.positions) == list(range(1, 7))


def test_a_reader_names_a_factor_after_answering_its_items(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    for item in review_set.items.all():
        answer(item, bob)

    response = bob_client.post(reverse("review-factor", args=[review_set.pk, 1]), NAMED)

    assert response.status_code == 302
    factor = FactorAnnotation.objects.get(reader=bob)
    assert factor.factor_name == NAMED["factor_name"]
    assert factor.dimension == review_set.items.first().counterfactual.dimension


def test_naming_waits_until_every_item_of_the_factor_is_submitted(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    answer(review_set.items.first(), bob)

    response = bob_client.post(reverse("review-factor", args=[review_set.pk, 1]), NAMED)

    assert response.status_code == 400
    assert "Answer all 2 items of this factor first" in response.text
    assert not FactorAnnotation.objects.exists()


def test_a_factor_needs_a_name_and_both_ratings(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer(review_set.items.get(), bob)

    response = bob_client.post(reverse("review-factor", args=[review_set.pk, 1]), {"factor_name": " "})

    assert response.status_code == 400
    assert not FactorAnnotation.objects.exists()


def test_the_factor_page_shows_the_readers_own_answers_but_not_the_dimension(bob, bob_client, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=1, images_per_dimension=1, blinded=True
    )
    item = review_set.items.get()
    answer(item, bob, clinical_description="bob's description")
    answer(item, charlie, clinical_description="charlie's description")

    text = bob_client.get(reverse("review-factor", args=[review_set.pk, 1])).text

    assert "bob&#x27;s description" in text
    assert "charlie" not in text
    assert str(item.counterfactual.dimension.dim) not in text


def test_an_unknown_factor_number_is_not_found(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert bob_client.get(reverse("review-factor", args=[review_set.pk, 2])).status_code == 404
