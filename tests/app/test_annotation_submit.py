"""Submitting follows the protocol: Q1, a description when meaningful, Q2; then on to the next item."""

import pytest
from django.urls import reverse

from reviewapp.models import Annotation
from tests.helpers.reviews import answer, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

COMPLETE = {
    "q1_meaningful": "yes",
    "clinical_description": "blurring of the right heart border",
    "q2_pneumonia": "early_change",
    "comment": "would call it early pneumonia",
    "confidence": "4",
    "seconds": "35",
}


def submit(client, review_set, position, data):
    return client.post(reverse("review-item", args=[review_set.pk, position]), data)


def test_a_complete_answer_is_submitted_and_the_next_item_opens(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=3)

    response = submit(bob_client, review_set, 1, COMPLETE)

    assert response.status_code == 302
    assert response.url == reverse("review-item", args=[review_set.pk, 2])
    annotation = Annotation.objects.get(reader=bob)
    assert not annotation.is_draft
    assert annotation.submitted_at is not None
    assert annotation.q2_pneumonia == "early_change"
    assert annotation.confidence == 4
    assert annotation.time_spent_seconds == 35


def test_a_meaningful_change_needs_a_clinical_description(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = submit(bob_client, review_set, 1, {**COMPLETE, "clinical_description": "  "})

    assert response.status_code == 400
    assert "Describe the change clinically" in response.text
    assert not Annotation.objects.exists()


def test_q1_and_q2_are_required(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = submit(bob_client, review_set, 1, {"comment": "not sure"})

    assert response.status_code == 400
    assert "semantically meaningful" in response.text
    assert "relevant to pneumonia" in response.text
    assert not Annotation.objects.exists()


def test_no_description_is_needed_when_the_change_is_not_meaningful(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    response = submit(bob_client, review_set, 1, {"q1_meaningful": "no", "q2_pneumonia": "no"})
    assert response.status_code == 302


def test_submitting_skips_to_the_next_unanswered_item(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=4)
    answer(items_in_reader_order(review_set, bob)[1], bob)

    response = submit(bob_client, review_set, 1, COMPLETE)

    assert response.url == reverse("review-item", args=[review_set.pk, 3])


def test_the_last_item_of_a_factor_asks_for_its_name(bob, bob_client):
    review_set = review_set_with_items(
        readers=[bob], dimensions=1, images_per_dimension=2, randomise_order=False
    )
    submit(bob_client, review_set, 1, COMPLETE)

    response = submit(bob_client, review_set, 2, COMPLETE)

    assert response.url == reverse("review-factor", args=[review_set.pk, 1]) + "?after=2"


def test_an_answer_can_be_changed_before_finalising(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    submit(bob_client, review_set, 1, COMPLETE)
    submit(bob_client, review_set, 1, {**COMPLETE, "q2_pneumonia": "not_compelling"})
    assert Annotation.objects.get().q2_pneumonia == "not_compelling"
