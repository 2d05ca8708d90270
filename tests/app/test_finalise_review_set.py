"""Finalising a set closes the reader's answers; it needs every item submitted."""

import pytest
from django.urls import reverse

from reviewapp.models import Annotation, ReviewAssignment
from tests.helpers.reviews import answer, answer_all, assignment_of, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_a_reader_with_every_item_submitted_can_finalise(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)

    response = bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))

    assert response.status_code == 302
    assert assignment_of(review_set, bob).finalised_at is not None


def test_finalising_is_refused_while_items_are_unanswered(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=3)
    answer(review_set.items.first(), bob)
    answer(review_set.items.last(), bob, is_draft=True)

    response = bob_client.post(reverse("review-set-finalise", args=[review_set.pk]), follow=True)

    assert "2 of 3 items are not submitted yet" in response.text
    assert assignment_of(review_set, bob).finalised_at is None


def test_answers_cannot_change_after_finalising(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob, q2_pneumonia="yes")
    bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))

    draft = bob_client.post(reverse("review-item-autosave", args=[review_set.pk, 1]), {"q2_pneumonia": "no"})
    submitted = bob_client.post(
        reverse("review-item", args=[review_set.pk, 1]), {"q1_meaningful": "no", "q2_pneumonia": "no"}
    )

    assert draft.status_code == 409
    assert submitted.status_code == 409
    assert Annotation.objects.get().q2_pneumonia == "yes"


def test_one_reader_finalising_leaves_the_other_open(bob, charlie, bob_client):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob)
    bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))
    assert ReviewAssignment.objects.get(review_set=review_set, reader=charlie).finalised_at is None


def test_the_overview_offers_finalising_once_everything_is_answered(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert "Finalise the set" not in bob_client.get(reverse("review-set", args=[review_set.pk])).text
    answer_all(review_set, bob)
    assert "Finalise the set" in bob_client.get(reverse("review-set", args=[review_set.pk])).text
