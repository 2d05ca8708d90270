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

    # POST-redirect-GET: the refused answers and the reasons come back on the page, which a reload does not
    # post again.
    assert response.status_code == 303
    assert response.url == reverse("review-item", args=[review_set.pk, 1])
    page = bob_client.get(response.url)
    assert "Describe the change clinically" in page.text
    assert "would call it early pneumonia" in page.text
    assert not Annotation.objects.exists()
    reloaded = bob_client.get(response.url)
    assert "Describe the change clinically" not in reloaded.text


def test_q1_and_q2_are_required(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = submit(bob_client, review_set, 1, {"comment": "not sure"})

    assert response.status_code == 303
    text = bob_client.get(response.url).text
    assert "Say whether the change is semantically meaningful." in text
    assert "Say whether the change is relevant to pneumonia." in text
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("flag", ["unreadable", "unsure"])
def test_a_flagged_item_is_submitted_without_the_protocol_answers(bob, bob_client, flag):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = submit(bob_client, review_set, 1, {"flag": flag, "comment": "overexposed"})

    assert response.status_code == 302
    annotation = Annotation.objects.get()
    assert not annotation.is_draft
    assert annotation.flag == flag
    assert annotation.q1_meaningful is None and annotation.q2_pneumonia == ""


def test_region_and_finding_are_stored_with_the_answers(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    submit(bob_client, review_set, 1, {**COMPLETE, "region": "right_lower", "finding": "border_blurring"})

    annotation = Annotation.objects.get()
    assert (annotation.region, annotation.finding, annotation.flag) == ("right_lower", "border_blurring", "")
    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text
    assert '<option value="right_lower" selected>' in text
    assert '<option value="border_blurring" selected>' in text


def test_an_unknown_region_or_finding_is_refused(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)

    response = submit(bob_client, review_set, 1, {**COMPLETE, "region": "left_knee", "finding": "fracture"})

    assert response.status_code == 303
    text = bob_client.get(response.url).text
    assert "left_knee is not one of the available choices" in text
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
