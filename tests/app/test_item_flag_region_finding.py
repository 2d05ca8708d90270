"""Passing on an item (image unreadable, not sure), and where and what the change is: stored by the service and
the API, exported in the review table, left out of agreement."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.models import Annotation
from reviewapp.selectors import exports
from reviewapp.selectors.agreement import review_set_agreement
from reviewapp.services.annotations import Answers, annotation_save_draft, annotation_submit
from tests.helpers.reviews import answer, assignment_of, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_a_flag_replaces_the_required_answers():
    assert Answers().missing()  # Q1 and Q2 are needed
    assert Answers(flag="unreadable").missing() == {}
    assert Answers(flag="unsure", comment="cannot tell").missing() == {}


def test_unknown_flag_region_and_finding_are_invalid():
    errors = Answers(flag="later", region="knee", finding="fracture").invalid()
    assert set(errors) == {"flag", "region", "finding"}
    assert Answers(flag="unsure", region="left_lower", finding="effusion").invalid() == {}


def test_the_service_stores_a_flagged_submission_and_refuses_bad_values(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assignment, item = assignment_of(review_set, bob), review_set.items.get()

    with pytest.raises(ValidationError) as refused:
        annotation_save_draft(assignment=assignment, item=item, answers=Answers(region="elbow"))
    assert "region" in refused.value.error_dict
    assert not Annotation.objects.exists()

    annotation = annotation_submit(
        assignment=assignment, item=item, answers=Answers(flag="unreadable", finding="image_quality")
    )
    assert not annotation.is_draft
    assert (annotation.flag, annotation.finding, annotation.region) == ("unreadable", "image_quality", "")


def test_the_api_reads_and_writes_the_new_fields(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    client = APIClient()
    client.force_authenticate(bob)
    item = review_set.items.get()

    response = client.post(
        "/api/annotations/",
        {
            "item": item.pk, "q1_meaningful": True, "clinical_description": "right basal haze",
            "q2_pneumonia": "possible", "region": "right_lower", "finding": "opacity", "submit": True,
        },
        format="json",
    )  # fmt: skip
    bad = client.post("/api/annotations/", {"item": item.pk, "finding": "fracture"}, format="json")
    flagged = client.post(
        "/api/annotations/", {"item": item.pk, "flag": "unsure", "submit": True}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["region"], body["finding"], body["flag"], body["status"]) == (
        "right_lower", "opacity", "", "submitted",
    )  # fmt: skip
    assert bad.status_code == 400 and set(bad.json()) == {"finding"}
    assert flagged.status_code == 200 and flagged.json()["flag"] == "unsure"
    assert flagged.json()["status"] == "submitted"


def test_the_review_table_exports_flag_region_and_finding(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    first, second = items_in_reader_order(review_set, bob)
    answer(first, bob, region="left_middle", finding="consolidation")
    answer(second, bob, q1_meaningful=None, q2_pneumonia="", clinical_description="", flag="unreadable")

    response = alice_client.get(reverse("export-reviews", args=[review_set.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert list(rows[0]) == exports.header(exports.REVIEW_COLUMNS)
    columns = list(rows[0])
    assert columns[columns.index("flag") : columns.index("flag") + 3] == ["flag", "region", "finding"]
    by_position = {int(r["image_index"]): r for r in rows}
    assert (by_position[first.position]["region"], by_position[first.position]["finding"]) == (
        "left_middle", "consolidation",
    )  # fmt: skip
    flagged = by_position[second.position]
    assert (flagged["flag"], flagged["semantically_meaningful"], flagged["pneumonia_relevance"]) == (
        "unreadable", "", "",
    )  # fmt: skip


def test_a_flagged_item_is_left_out_of_agreement(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=3)
    items = list(review_set.items.order_by("position"))
    for item in items:
        answer(item, bob, q1_meaningful=True, q2_pneumonia="yes")
    answer(items[0], charlie, q1_meaningful=True, q2_pneumonia="yes")
    answer(items[1], charlie, q1_meaningful=False, q2_pneumonia="no")
    answer(items[2], charlie, q1_meaningful=None, q2_pneumonia="", clinical_description="", flag="unsure")

    q1 = next(a for a in review_set_agreement(review_set=review_set) if a.question == "q1_meaningful")

    assert q1.items == 2
