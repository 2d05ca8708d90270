"""Arms of the reader study: saliency maps of the lab as review items with their own questions, the
confidence change before and after the explanation, the arm comparison on the results page and in the CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.agreement import mean_interval, wilson_interval
from reviewapp.models import Annotation, ReviewItem, ReviewSet
from reviewapp.selectors.agreement import review_set_agreement, review_set_arms, review_set_summary
from reviewapp.services.annotations import Answers, annotation_show_explanation, annotation_submit
from reviewapp.services.lab import lab_run_add_to_review_set
from tests.factories import DimensionEffectFactory, LabRunFactory, SaliencyRunFactory, SweepFactory
from tests.helpers.reviews import answer, assignment_of, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

COUNTERFACTUAL_ANSWER = {"q1_meaningful": "yes", "clinical_description": "opacity", "q2_pneumonia": "yes"}


def position_of(review_set, reader, item: ReviewItem) -> int:
    return [i.pk for i in items_in_reader_order(review_set, reader)].index(item.pk) + 1


def mixed_set(readers, **options):
    review_set = review_set_with_items(readers=readers, dimensions=1, images_per_dimension=1, **options)
    saliency = lab_run_add_to_review_set(
        run=SaliencyRunFactory(study=review_set.study), review_set=review_set
    )
    return review_set, saliency


# --- pure intervals -----------------------------------------------------------------------------------


def test_wilson_interval_matches_the_closed_form_and_stays_inside_zero_one():
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(0, 5)[1] > 0.3
    assert wilson_interval(5, 5)[1] == 1.0 and wilson_interval(5, 5)[0] < 0.7
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_mean_interval_is_students_t():
    mean, (low, high) = mean_interval([1, 2, 3, 4])
    # sd = 1.291, t(0.975, 3) = 3.182: half-width 2.054
    assert mean == 2.5 and (low, high) == pytest.approx((0.446, 4.554), abs=1e-3)
    assert mean_interval([2]) == (2.0, None)
    assert mean_interval([]) is None


# --- adding saliency maps -------------------------------------------------------------------------------


def test_a_saliency_run_joins_a_review_set_in_the_saliency_arm(alice_client):
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = SaliencyRunFactory(study=review_set.study)

    response = alice_client.post(reverse("lab-run-add", args=[run.pk]), {"review_set": review_set.pk})

    assert response.status_code == 302
    item = ReviewItem.objects.get(lab_run=run)
    assert item.arm == "saliency" and item.position == 2
    assert set(item.images()) == {"original", "heatmap"}
    assert ReviewItem.objects.get(review_set=review_set, position=1).arm == "counterfactual"


def test_a_saliency_run_without_a_heat_map_is_refused():
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    run = SaliencyRunFactory(study=review_set.study, heatmap_image="")
    with pytest.raises(ValidationError, match="no heat map"):
        lab_run_add_to_review_set(run=run, review_set=review_set)
    assert not ReviewItem.objects.filter(lab_run=run).exists()


# --- the saliency protocol ----------------------------------------------------------------------------------


def test_the_saliency_protocol_needs_its_own_answers_not_the_counterfactual_ones(bob):
    review_set, item = mixed_set([bob])
    assignment = assignment_of(review_set, bob)

    with pytest.raises(ValidationError) as refused:
        annotation_submit(assignment=assignment, item=item, answers=Answers())
    assert set(refused.value.message_dict) == {"saliency_relevant"}
    with pytest.raises(ValidationError) as refused:
        annotation_submit(assignment=assignment, item=item, answers=Answers(saliency_relevant=True))
    assert set(refused.value.message_dict) == {"region"}
    assert not Annotation.objects.filter(item=item, is_draft=False).exists()

    stored = annotation_submit(
        assignment=assignment,
        item=item,
        answers=Answers(saliency_relevant=True, region="right_lower", confidence=4),
    )
    assert (stored.saliency_relevant, stored.region, stored.confidence, stored.is_draft) == (
        True,
        "right_lower",
        4,
        False,
    )
    assert (
        annotation_submit(
            assignment=assignment,
            item=item,
            answers=Answers(saliency_relevant=False),
            fields=["saliency_relevant"],
        ).saliency_relevant
        is False
    )


def test_the_counterfactual_protocol_is_unchanged_in_a_mixed_set(bob):
    review_set, _ = mixed_set([bob])
    counterfactual = review_set.items.get(position=1)
    with pytest.raises(ValidationError) as refused:
        annotation_submit(
            assignment=assignment_of(review_set, bob),
            item=counterfactual,
            answers=Answers(saliency_relevant=True),
        )
    assert set(refused.value.message_dict) == {"q1_meaningful", "q2_pneumonia"}


def test_the_reading_screen_shows_a_saliency_item_with_its_questions_and_heat_map(bob, bob_client):
    review_set, item = mixed_set([bob], blinded=True)
    position = position_of(review_set, bob, item)

    text = bob_client.get(reverse("review-item", args=[review_set.pk, position])).content.decode()

    assert 'name="saliency_relevant"' in text and 'id="heat-opacity"' in text and 'id="heat-layer"' in text
    assert 'name="q1_meaningful"' not in text and 'name="q2_pneumonia"' not in text
    assert "Grad-CAM" not in text  # blinded: the method is not named
    heatmap = reverse("review-item-image", args=[review_set.pk, position, "heatmap"])
    assert heatmap in text
    served = bob_client.get(heatmap)
    assert (
        served.status_code == 200 and b"".join(served.streaming_content) == item.lab_run.heatmap_image.read()
    )
    missing = bob_client.get(reverse("review-item-image", args=[review_set.pk, position, "perturbed"]))
    assert missing.status_code == 404

    response = bob_client.post(
        reverse("review-item", args=[review_set.pk, position]),
        {"saliency_relevant": "yes", "region": "left_lower", "confidence": "3", "seconds": "12"},
    )
    assert response.status_code == 302
    stored = Annotation.objects.get(item=item, reader=bob)
    assert (stored.saliency_relevant, stored.region, stored.is_draft, stored.time_spent_seconds) == (
        True,
        "left_lower",
        False,
        12,
    )


def test_the_api_names_the_arm_and_takes_saliency_answers(bob):
    review_set, item = mixed_set([bob])
    api = APIClient()
    api.force_authenticate(bob)
    mine = next(i for i in api.get("/api/items/").json()["results"] if i["id"] == item.pk)
    assert mine["arm"] == "saliency" and set(mine["images"]) == {"original", "heatmap"}
    response = api.post(
        "/api/annotations/",
        {"item": item.pk, "saliency_relevant": False, "submit": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["saliency_relevant"] is False


# --- confidence change --------------------------------------------------------------------------------------


def test_a_confidence_change_set_needs_both_ratings_on_every_arm(bob):
    review_set, item = mixed_set([bob], confidence_change=True)
    assignment = assignment_of(review_set, bob)
    with pytest.raises(ValidationError) as refused:
        annotation_submit(assignment=assignment, item=item, answers=Answers(saliency_relevant=False))
    assert set(refused.value.message_dict) == {"confidence_before", "confidence_after"}
    with pytest.raises(ValidationError) as refused:
        annotation_submit(
            assignment=assignment, item=item, answers=Answers(saliency_relevant=False, confidence_before=7)
        )
    assert "confidence_before" in refused.value.message_dict
    annotation_show_explanation(assignment=assignment, item=item, confidence_before=2)
    stored = annotation_submit(
        assignment=assignment,
        item=item,
        answers=Answers(saliency_relevant=False, confidence_before=2, confidence_after=4),
    )
    assert (stored.confidence_before, stored.confidence_after) == (2, 4)
    # A passed-on item needs no ratings.
    counterfactual = review_set.items.get(position=1)
    assert annotation_submit(assignment=assignment, item=counterfactual, answers=Answers(flag="unsure")).flag


def test_the_reading_screen_hides_the_explanation_until_the_call_is_rated(bob, bob_client):
    review_set, item = mixed_set([bob], confidence_change=True)
    url = reverse("review-item", args=[review_set.pk, position_of(review_set, bob, item)])

    text = bob_client.get(url).content.decode()
    assert (
        "awaiting-before" in text and 'name="confidence_before"' in text and 'name="confidence_after"' in text
    )
    assert "The classifier calls this image <strong>pneumonia</strong>" in text

    # A stored before-rating alone does not show the explanation: the reader asks for it.
    position = position_of(review_set, bob, item)
    bob_client.post(
        reverse("review-item-autosave", args=[review_set.pk, position]), {"confidence_before": "3"}
    )
    assert "awaiting-before" in bob_client.get(url).content.decode()
    shown = bob_client.post(reverse("review-item-show-explanation", args=[review_set.pk, position]))
    assert shown.status_code == 200 and shown.json()["confidence_before"] == 3
    text = bob_client.get(url).content.decode()
    assert "awaiting-before" not in text and 'id="before-frozen-note"' in text


def test_a_set_without_the_option_does_not_ask_for_confidence_change(bob, bob_client):
    review_set, item = mixed_set([bob])
    text = bob_client.get(
        reverse("review-item", args=[review_set.pk, position_of(review_set, bob, item)])
    ).content.decode()
    assert "confidence_before" not in text and "awaiting-before" not in text


# --- results and export ---------------------------------------------------------------------------------------


def test_the_arms_are_compared_with_intervals_agreement_time_and_confidence_change(bob, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=1, images_per_dimension=2, confidence_change=True
    )
    runs = [SaliencyRunFactory(study=review_set.study) for _ in range(3)]
    saliency = [lab_run_add_to_review_set(run=run, review_set=review_set) for run in runs]
    counterfactual = list(review_set.items.filter(counterfactual__isnull=False))
    for item, q2 in zip(counterfactual, ["yes", "no"], strict=True):
        for reader in (bob, charlie):
            answer(
                item, reader, q2_pneumonia=q2, time_spent_seconds=30, confidence_before=3, confidence_after=4
            )
    for item, verdicts in zip(saliency, [(True, True), (True, False), (False, False)], strict=True):
        for reader, relevant in zip((bob, charlie), verdicts, strict=True):
            answer(
                item, reader, q1_meaningful=None, q2_pneumonia="", saliency_relevant=relevant, region="right_lower",
                time_spent_seconds=10, confidence_before=4, confidence_after=2 if relevant else 3,
            )  # fmt: skip

    arms = {arm.arm: arm for arm in review_set_arms(review_set=review_set)}

    cf, sal = arms["counterfactual"], arms["saliency"]
    assert (cf.items, cf.answers, cf.judged_items, cf.relevant_items) == (2, 4, 2, 1)
    assert cf.relevant_interval == pytest.approx(wilson_interval(1, 2))
    # Saliency: item 1 both yes (relevant), item 2 split 1 of 2 (not more than half), item 3 both no.
    assert (sal.items, sal.answers, sal.judged_items, sal.relevant_items) == (3, 6, 3, 1)
    assert sal.relevant_share == pytest.approx(1 / 3)
    assert sal.agreement.items == 3 and sal.agreement.readers == 2 and sal.agreement.method == "Cohen's kappa"
    assert sal.agreement.observed == pytest.approx(2 / 3)
    assert cf.agreement.kappa == pytest.approx(1.0)
    assert (cf.seconds_per_item, sal.seconds_per_item) == (30, 10)
    assert cf.confidence_change == pytest.approx(1.0) and cf.confidence_changes == 4
    # Saliency changes: -2, -2 (item 1), -2, -1 (item 2), -1, -1 (item 3): mean -1.5.
    assert sal.confidence_change == pytest.approx(-1.5) and sal.confidence_changes == 6
    low, high = sal.confidence_change_interval
    assert low < -1.5 < high < -0.9

    # The counterfactual protocol's agreement and summary leave the saliency items out.
    q2 = next(row for row in review_set_agreement(review_set=review_set) if row.question == "q2_pneumonia")
    assert q2.items == 2
    assert review_set_summary(review_set=review_set).lab_items == []


def test_the_results_page_and_the_csv_carry_the_arm(alice_client, bob):
    review_set, item = mixed_set([bob], confidence_change=True)
    counterfactual = review_set.items.get(position=1)
    answer(counterfactual, bob, q2_pneumonia="yes", confidence_before=2, confidence_after=3)
    answer(item, bob, q1_meaningful=None, q2_pneumonia="", saliency_relevant=True, region="left_upper",
           confidence_before=4, confidence_after=4)  # fmt: skip

    page = alice_client.get(reverse("review-set-results", args=[review_set.pk])).content.decode()
    assert 'data-arm="counterfactual"' in page and 'data-arm="saliency"' in page
    assert "Confidence change" in page and "95% CI" in page

    response = alice_client.get(reverse("export-reviews", args=[review_set.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_arm = {row["arm"]: row for row in rows}
    assert set(by_arm) == {"counterfactual", "saliency"}
    assert by_arm["saliency"]["saliency_relevant"] == "yes" and by_arm["saliency"]["source"] == "lab:gradcam"
    assert by_arm["saliency"]["region"] == "left_upper" and by_arm["saliency"]["confidence_change"] == "0"
    assert (
        by_arm["counterfactual"]["saliency_relevant"] == ""
        and by_arm["counterfactual"]["confidence_change"] == "1"
    )


def test_a_counterfactual_lab_run_stays_in_the_counterfactual_arm():
    review_set = review_set_with_items(dimensions=1, images_per_dimension=1)
    item = lab_run_add_to_review_set(run=LabRunFactory(study=review_set.study), review_set=review_set)
    assert item.arm == "counterfactual"
    assert [arm.arm for arm in review_set_arms(review_set=review_set)] == ["counterfactual"]


def test_an_admin_asks_for_the_confidence_change_when_creating_a_set(alice_client):
    sweep = SweepFactory()
    dimension = DimensionEffectFactory(sweep=sweep, rank=1, selected=True)
    data = {
        "name": "With confidence change",
        "images_per_dimension": 2,
        "min_confidence": 0.9,
        "blinded": "on",
        "confidence_change": "on",
        "dimensions": [dimension.pk],
    }
    page = alice_client.get(reverse("review-set-new", args=[sweep.pk])).content.decode()
    assert 'name="confidence_change"' in page

    response = alice_client.post(reverse("review-set-new", args=[sweep.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    review_set = ReviewSet.objects.get(sweep=sweep)
    assert review_set.confidence_change is True
    detail = alice_client.get(reverse("curation-review-set", args=[review_set.pk])).content.decode()
    assert "confidence rated before and with the explanation" in detail
