"""A lab result in a review set: appended as the next item, read and answered like any item, exported."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from reviewapp.models import ReviewItem
from reviewapp.selectors import exports
from reviewapp.selectors.agreement import review_set_agreement, review_set_summary
from reviewapp.selectors.reviews import reader_factor_groups
from reviewapp.services.lab import lab_run_add_to_review_set, lab_run_create
from reviewapp.tasks import lab_run_counterfactual_task
from tests.factories import LabRunFactory, ReviewSetFactory
from tests.helpers.reviews import (
    answer,
    answer_all,
    assignment_of,
    items_in_reader_order,
    review_set_with_items,
)
from tests.helpers.studies import FAST_LAB_PARAMETERS, projected_cases

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

ANSWER = {
    "q1_meaningful": "yes",
    "clinical_description": "new opacity at the right base",
    "q2_pneumonia": "yes",
    "seconds": "20",
}


def add(client, run, review_set):
    return client.post(reverse("lab-run-add", args=[run.pk]), {"review_set": review_set.pk})


def position_of(review_set, reader, item: ReviewItem) -> int:
    return [i.pk for i in items_in_reader_order(review_set, reader)].index(item.pk) + 1


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_finished_run_becomes_the_next_item_of_a_review_set(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    run = LabRunFactory(study=review_set.study)

    response = add(alice_client, run, review_set)

    assert response.status_code == 302 and response.url == reverse("lab-run", args=[run.pk])
    item = ReviewItem.objects.get(lab_run=run)
    assert item.review_set == review_set and item.position == 3 and item.counterfactual is None
    page = alice_client.get(reverse("curation-review-set", args=[review_set.pk])).content.decode()
    assert reverse("lab-run", args=[run.pk]) in page
    assert reverse("media", args=[run.counterfactual_image.name]) in page


def test_adding_the_same_run_twice_is_refused(alice_client):
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = LabRunFactory(study=review_set.study)
    add(alice_client, run, review_set)

    response = add(alice_client, run, review_set)

    assert response.status_code == 409
    assert f"This run is item 2 of {review_set.name!r} already." in response.content.decode().replace(
        "&#x27;", "'"
    )
    assert review_set.items.count() == 2


def test_a_set_a_reader_has_finalised_takes_no_new_item(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob)
    assignment = assignment_of(review_set, bob)
    assignment.finalised_at = timezone.now()
    assignment.save()
    run = LabRunFactory(study=review_set.study)

    response = add(alice_client, run, review_set)

    assert response.status_code == 409
    assert "have finalised" in response.content.decode()
    assert not ReviewItem.objects.filter(lab_run=run).exists()


@pytest.mark.parametrize(
    "run_options, message",
    [
        ({"method": "gradcam", "flipped": None}, "stored no heat map"),
        ({"status": "running"}, "Only a run that succeeded"),
    ],
)
def test_saliency_runs_without_a_map_and_unfinished_runs_are_not_offered_to_readers(
    alice_client, run_options, message
):
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = LabRunFactory(study=review_set.study, **run_options)

    response = add(alice_client, run, review_set)

    assert response.status_code == 400 and message in response.content.decode()
    assert not ReviewItem.objects.filter(lab_run=run).exists()


def test_a_run_goes_only_to_review_sets_of_its_own_study(alice_client):
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = LabRunFactory()

    assert add(alice_client, run, review_set).status_code == 400
    with pytest.raises(ValidationError, match="different studies"):
        lab_run_add_to_review_set(run=run, review_set=review_set)
    assert not ReviewItem.objects.filter(lab_run=run).exists()


def test_reviewers_cannot_add_runs(bob_client):
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = LabRunFactory(study=review_set.study)
    assert add(bob_client, run, review_set).status_code == 403
    assert not ReviewItem.objects.filter(lab_run=run).exists()


def test_a_reviewer_answers_a_real_lab_result_and_the_export_includes_it(
    lab_study, alice, alice_client, bob, bob_client
):
    case = projected_cases(lab_study, created_by=alice)[0]
    run = lab_run_create(study=lab_study, case=case, method="gci", parameters=FAST_LAB_PARAMETERS["gci"])
    lab_run_counterfactual_task(run.job_id, run_pk=run.pk)
    run.refresh_from_db()
    review_set = review_set_with_items(
        readers=[bob], dimensions=1, images_per_dimension=1, blinded=True, sweep__study=lab_study
    )
    item = lab_run_add_to_review_set(run=run, review_set=review_set)
    position = position_of(review_set, bob, item)

    page = bob_client.get(reverse("review-item", args=[review_set.pk, position]))

    assert page.status_code == 200
    text = page.content.decode()
    for hidden in ("gci", "GCI", "introspection", case.original_filename, "Factor A"):
        assert hidden not in text
    assert f"p(pneumonia) = {run.prob_counterfactual:.2f}" in text
    perturbed = bob_client.get(reverse("review-item-image", args=[review_set.pk, position, "perturbed"]))
    assert b"".join(perturbed.streaming_content) == run.counterfactual_image.read()
    for kind in ("original", "reconstruction", "difference", "flicker", "stack"):
        assert (
            bob_client.get(reverse("review-item-image", args=[review_set.pk, position, kind])).status_code
            == 200
        )

    response = bob_client.post(reverse("review-item", args=[review_set.pk, position]), ANSWER)
    assert response.status_code == 302

    rows = read_csv(alice_client.get(reverse("export-reviews", args=[review_set.pk])))
    assert list(rows[0]) == exports.header(exports.REVIEW_COLUMNS)
    (row,) = [r for r in rows if r["source"] == "lab:gci"]
    assert row["image_index"] == str(item.position) and row["case"] == case.original_filename
    assert row["style_dimension"] == "" and row["direction"] == "" and row["rank_in_dimension"] == ""
    assert row["clinical_relevance"] == ANSWER["clinical_description"] and row["pneumonia_relevance"] == "yes"
    assert float(row["prob_perturbed"]) == pytest.approx(run.prob_counterfactual, rel=1e-5)
    assert float(row["prob_reconstruction"]) == pytest.approx(run.prob_start, rel=1e-5)


def test_an_unblinded_set_names_the_lab_method_to_its_reader(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1, blinded=False)
    run = LabRunFactory(study=review_set.study, method="dip")
    item = lab_run_add_to_review_set(run=run, review_set=review_set)

    text = bob_client.get(
        reverse("review-item", args=[review_set.pk, position_of(review_set, bob, item)])
    ).text

    assert "Deep image prior" in text and run.case.original_filename in text and "no pneumonia" in text


def test_the_api_gives_lab_items_to_readers_blinded_and_to_admins_with_their_method(bob, alice):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1, blinded=True)
    run = LabRunFactory(study=review_set.study)
    item = lab_run_add_to_review_set(run=run, review_set=review_set)
    api = APIClient()

    api.force_authenticate(bob)
    mine = next(i for i in api.get("/api/items/").json()["results"] if i["id"] == item.pk)
    assert mine["details"] is None and mine["prob_perturbed"] == pytest.approx(0.32)
    assert "/reviews/" in mine["images"]["perturbed"]
    response = api.post(
        "/api/annotations/", {"item": item.pk, **ANSWER, "q1_meaningful": True, "submit": True}, format="json"
    )
    assert response.status_code == 201, response.json()

    api.force_authenticate(alice)
    details = next(
        i for i in api.get(f"/api/items/?review_set={review_set.pk}").json()["results"] if i["id"] == item.pk
    )["details"]
    assert details["source"] == "lab" and details["method"] == "gci" and details["dimension"] is None
    assert details["case"] == run.case_id


def test_agreement_counts_lab_items_and_the_dimension_verdicts_skip_them(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    run = LabRunFactory(study=review_set.study)
    item = lab_run_add_to_review_set(run=run, review_set=review_set)
    for reader in (bob, charlie):
        answer_all(review_set, reader)

    q1 = next(a for a in review_set_agreement(review_set=review_set) if a.question == "q1_meaningful")
    summary = review_set_summary(review_set=review_set)

    assert q1.items == 3
    assert [verdict.items for verdict in summary.dimensions] == [2]
    groups = reader_factor_groups(assignment=assignment_of(review_set, bob))
    assert len(groups) == 1 and position_of(review_set, bob, item) not in groups[0].positions


def test_a_reader_must_answer_the_lab_item_before_finalising(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    answer_all(review_set, bob)
    item = lab_run_add_to_review_set(run=LabRunFactory(study=review_set.study), review_set=review_set)

    bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))
    assert assignment_of(review_set, bob).finalised_at is None

    answer(item, bob)
    bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))
    assert assignment_of(review_set, bob).finalised_at is not None


def test_the_factor_catalogue_leaves_lab_items_out(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    lab_run_add_to_review_set(run=LabRunFactory(study=review_set.study), review_set=review_set)

    response = alice_client.get(reverse("export-factors", args=[review_set.study_id]))

    rows = read_csv(response)
    assert len(rows) == 1 and rows[0]["items"] == "1"


def test_a_review_set_of_another_study_is_not_offered(alice_client):
    run = LabRunFactory()
    own = ReviewSetFactory(sweep__study=run.study)
    ReviewSetFactory()

    form = alice_client.get(reverse("lab-run", args=[run.pk])).context["add_form"]

    assert list(form.fields["review_set"].queryset) == [own]


def test_the_results_page_judges_each_lab_item_by_its_readers_majority(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=1)
    run = LabRunFactory(study=review_set.study, method="dip")
    item = lab_run_add_to_review_set(run=run, review_set=review_set)
    answer(item, bob, q2_pneumonia="yes")
    answer(item, charlie, q2_pneumonia="subtle")

    (verdict,) = review_set_summary(review_set=review_set).lab_items
    page = alice_client.get(reverse("review-set-results", args=[review_set.pk])).content.decode()

    assert verdict.item == item and verdict.answers == 2 and verdict.meaningful and verdict.relevant
    assert "Deep image prior" in page and reverse("lab-run", args=[run.pk]) in page
