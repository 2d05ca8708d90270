"""Drafts autosave as the reader types; reading time adds up; nothing is stored for bad input."""

import pytest
from django.urls import reverse

from reviewapp.models import Annotation
from reviewapp.services.annotations import MAX_SECONDS_PER_SAVE
from tests.helpers.reviews import items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def draft_url(review_set, position=1):
    return reverse("review-item-autosave", args=[review_set.pk, position])


def test_it_stores_an_incomplete_answer_as_a_draft(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = bob_client.post(draft_url(review_set), {"q1_meaningful": "yes", "seconds": "12"})

    assert response.status_code == 200
    assert response.json()["status"] == "draft"
    annotation = Annotation.objects.get(reader=bob)
    assert annotation.item == items_in_reader_order(review_set, bob)[0]
    assert annotation.q1_meaningful is True
    assert annotation.is_draft
    assert annotation.time_spent_seconds == 12


def test_the_draft_is_shown_again_after_a_reload(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    bob_client.post(
        draft_url(review_set), {"clinical_description": "hazy right base", "q2_pneumonia": "subtle"}
    )

    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text

    assert "hazy right base</textarea>" in text
    assert 'value="subtle" checked' in text
    assert "Draft saved" in text


def test_reading_time_adds_up_and_each_save_counts_at_most_ten_minutes(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    bob_client.post(draft_url(review_set), {"seconds": "20"})
    bob_client.post(draft_url(review_set), {"seconds": "100000"})
    assert Annotation.objects.get().time_spent_seconds == 20 + MAX_SECONDS_PER_SAVE


def test_it_rejects_an_unknown_answer_and_stores_nothing(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)

    response = bob_client.post(draft_url(review_set), {"q2_pneumonia": "definitely", "confidence": "9"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"q2_pneumonia", "confidence"}
    assert not Annotation.objects.exists()


def test_editing_a_submitted_answer_keeps_it_submitted(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    complete = {"q1_meaningful": "no", "q2_pneumonia": "no"}
    bob_client.post(reverse("review-item", args=[review_set.pk, 1]), complete)

    kept = bob_client.post(draft_url(review_set), {**complete, "comment": "on second look, nothing"})
    partial = bob_client.post(draft_url(review_set), {"q1_meaningful": "no"})

    assert kept.json()["status"] == "submitted"
    assert partial.json()["status"] == "submitted"
    annotation = Annotation.objects.get()
    assert (annotation.q2_pneumonia, annotation.comment) == ("no", "on second look, nothing")
    assert not annotation.is_draft


def test_an_edit_that_would_leave_a_submitted_answer_incomplete_is_refused(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    complete = {"q1_meaningful": "yes", "clinical_description": "hazy base", "q2_pneumonia": "yes"}
    bob_client.post(reverse("review-item", args=[review_set.pk, 1]), complete)

    response = bob_client.post(draft_url(review_set), {**complete, "clinical_description": ""})

    assert response.status_code == 400
    assert "stays as it was" in response.json()["errors"]["clinical_description"][0]
    annotation = Annotation.objects.get()
    assert (annotation.clinical_description, annotation.is_draft) == ("hazy base", False)


def test_it_only_accepts_posts(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert bob_client.get(draft_url(review_set)).status_code == 405
