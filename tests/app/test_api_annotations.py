"""Answering through the API: drafts, submitting, the protocol's checks, finalised sets, factor names."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from reviewapp.models import Annotation, FactorAnnotation
from tests.helpers.reviews import answer_all, assignment_of, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def api_bob(bob) -> APIClient:
    client = APIClient()
    client.force_authenticate(bob)
    return client


def test_a_reviewer_saves_a_draft_then_submits_it(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    item = review_set.items.get()

    created = api_bob.post(
        "/api/annotations/", {"item": item.pk, "q1_meaningful": True, "seconds": 10}, format="json"
    )
    submitted = api_bob.post(
        "/api/annotations/",
        {
            "item": item.pk,
            "q1_meaningful": True,
            "clinical_description": "hazy opacity RML",
            "q2_pneumonia": "yes",
            "confidence": 5,
            "submit": True,
            "seconds": 5,
        },
        format="json",
    )

    assert created.status_code == 201
    assert created.json()["status"] == "draft"
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "submitted"
    annotation = Annotation.objects.get()
    assert annotation.time_spent_seconds == 15
    assert annotation.submitted_at is not None


def test_submitting_an_incomplete_answer_is_refused_and_stores_nothing(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    response = api_bob.post(
        "/api/annotations/",
        {"item": review_set.items.get().pk, "q1_meaningful": True, "submit": True},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"clinical_description", "q2_pneumonia"}
    assert not Annotation.objects.exists()


def test_bad_values_are_refused(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    response = api_bob.post(
        "/api/annotations/",
        {"item": review_set.items.get().pk, "q2_pneumonia": "maybe", "confidence": 7},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"q2_pneumonia", "confidence"}


def test_a_patch_changes_only_what_it_sends(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob, q2_pneumonia="possible")
    annotation = Annotation.objects.get()

    response = api_bob.patch(f"/api/annotations/{annotation.pk}/", {"comment": "subtle"}, format="json")

    assert response.status_code == 200
    annotation.refresh_from_db()
    assert (annotation.comment, annotation.q2_pneumonia, annotation.is_draft) == ("subtle", "possible", False)


def test_answers_are_closed_once_the_reader_finalised(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob)
    assignment = assignment_of(review_set, bob)
    assignment.finalised_at = timezone.now()
    assignment.save()
    annotation = Annotation.objects.get()

    response = api_bob.patch(f"/api/annotations/{annotation.pk}/", {"comment": "late"}, format="json")

    assert response.status_code == 409


def test_a_reviewer_names_a_factor_through_the_api(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)
    dimension = review_set.items.first().counterfactual.dimension
    payload = {
        "review_set": review_set.pk,
        "dimension": dimension.pk,
        "factor_name": "left basal opacity",
        "clinical_relevance": "yes",
        "pneumonia_relevance": "possible",
    }

    response = api_bob.post("/api/factor-annotations/", payload, format="json")
    renamed = api_bob.patch(
        f"/api/factor-annotations/{response.json()['id']}/", {"factor_name": "left base"}, format="json"
    )

    assert response.status_code == 201
    assert renamed.status_code == 200
    assert FactorAnnotation.objects.get().factor_name == "left base"


def test_a_factor_cannot_be_named_before_its_items_are_answered(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    dimension = review_set.items.first().counterfactual.dimension
    response = api_bob.post(
        "/api/factor-annotations/",
        {
            "review_set": review_set.pk,
            "dimension": dimension.pk,
            "factor_name": "x",
            "clinical_relevance": "no",
            "pneumonia_relevance": "no",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "Answer all 2 items" in str(response.json())
