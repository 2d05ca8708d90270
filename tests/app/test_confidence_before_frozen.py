"""Confidence change: the explanation is shown only after the before-rating, the server records when, and from
then on the before-rating cannot change (service, reading screen autosave and submit, API), with nothing of a
refused save stored: no new version, no version history, no audit event."""

from __future__ import annotations

import csv
import importlib
import io

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.models import Annotation, AnswerVersion, AuditAction, AuditEvent
from reviewapp.services.annotations import (
    Answers,
    BeforeRatingFrozen,
    ExplanationNotShown,
    annotation_save_draft,
    annotation_show_explanation,
    annotation_submit,
    assignment_finalise,
)
from tests.helpers.reviews import assignment_of, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

ANSWERS = {"q1_meaningful": "yes", "clinical_description": "opacity at the right base", "q2_pneumonia": "yes"}


@pytest.fixture
def staged(bob):
    """A one-item confidence-change set read by bob: (review set, item, assignment)."""
    review_set = review_set_with_items(
        readers=[bob], dimensions=1, images_per_dimension=1, confidence_change=True
    )
    item = review_set.items.get()
    return review_set, item, assignment_of(review_set, bob)


@pytest.fixture
def api_bob(bob) -> APIClient:
    client = APIClient()
    client.force_authenticate(bob)
    return client


def shown(staged, rating: int = 2) -> Annotation:
    _, item, assignment = staged
    return annotation_show_explanation(assignment=assignment, item=item, confidence_before=rating)


def trail(annotation: Annotation) -> tuple:
    """What a refused save must leave as it was: the stored answer, its version, history and audit events."""
    annotation.refresh_from_db()
    return (
        annotation.confidence_before,
        annotation.confidence_after,
        annotation.q1_meaningful,
        annotation.version,
        annotation.is_draft,
        AnswerVersion.objects.filter(annotation=annotation).count(),
        AuditEvent.objects.filter(action__in=[AuditAction.SAVE_ANSWER, AuditAction.SUBMIT_ANSWER]).count(),
    )


# --- the service --------------------------------------------------------------------------------------------


def test_the_before_rating_can_change_until_the_explanation_is_shown(staged):
    _, item, assignment = staged
    annotation_save_draft(assignment=assignment, item=item, answers=Answers(confidence_before=2))
    changed = annotation_save_draft(assignment=assignment, item=item, answers=Answers(confidence_before=4))
    assert changed.confidence_before == 4 and changed.explanation_shown_at is None


def test_showing_the_explanation_needs_a_before_rating_and_is_recorded_once(staged, bob):
    _, item, assignment = staged
    with pytest.raises(ValidationError) as refused:
        annotation_show_explanation(assignment=assignment, item=item)
    assert "confidence_before" in refused.value.message_dict
    assert not Annotation.objects.exists()

    annotation = shown(staged, 3)
    assert annotation.confidence_before == 3 and annotation.explanation_shown_at is not None
    again = annotation_show_explanation(assignment=assignment, item=item)
    assert again.explanation_shown_at == annotation.explanation_shown_at
    events = AuditEvent.objects.filter(action=AuditAction.SHOW_EXPLANATION)
    assert events.count() == 1 and events.get().detail["confidence_before"] == 3


def test_a_set_without_the_confidence_change_has_nothing_to_show(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    with pytest.raises(ValidationError):
        annotation_show_explanation(
            assignment=assignment_of(review_set, bob), item=review_set.items.get(), confidence_before=3
        )


def test_after_the_showing_a_draft_save_of_another_before_rating_is_refused_and_stores_nothing(staged):
    _, item, assignment = staged
    annotation = shown(staged, 2)
    before = trail(annotation)
    with pytest.raises(BeforeRatingFrozen) as refused:
        annotation_save_draft(
            assignment=assignment,
            item=item,
            answers=Answers(confidence_before=5, q1_meaningful=True),
            fields=["confidence_before", "q1_meaningful"],
            version=annotation.version,
        )
    assert refused.value.code == "frozen" and "confidence_before" in refused.value.message_dict
    assert trail(annotation) == before  # not even the other answer of the same save
    # The same rating again (a form that sends every answer) is no change, and is saved with the rest.
    kept = annotation_save_draft(
        assignment=assignment, item=item, answers=Answers(confidence_before=2, confidence_after=4),
        fields=["confidence_before", "confidence_after"],
    )  # fmt: skip
    assert (kept.confidence_before, kept.confidence_after) == (2, 4)


def test_after_submitting_a_change_of_the_before_rating_is_refused_with_the_history_unchanged(staged):
    _, item, assignment = staged
    shown(staged, 2)
    annotation = annotation_submit(
        assignment=assignment,
        item=item,
        answers=Answers(q1_meaningful=False, q2_pneumonia="no", confidence_before=2, confidence_after=3),
    )
    before = trail(annotation)
    for store in (annotation_save_draft, annotation_submit):
        with pytest.raises(BeforeRatingFrozen):
            store(
                assignment=assignment,
                item=item,
                answers=Answers(
                    q1_meaningful=False, q2_pneumonia="no", confidence_before=5, confidence_after=3
                ),
            )
        assert trail(annotation) == before
    versions = AnswerVersion.objects.filter(annotation=annotation)
    assert [v.answers["confidence_before"] for v in versions] == [2]


def test_answers_about_the_explanation_wait_until_it_is_shown_but_passing_on_does_not(staged):
    _, item, assignment = staged
    for answers in (Answers(q1_meaningful=True), Answers(confidence_after=4), Answers(comment="hm")):
        with pytest.raises(ExplanationNotShown):
            annotation_save_draft(
                assignment=assignment,
                item=item,
                answers=answers,
                fields=[f for f, v in vars(answers).items() if v],
            )
    assert not Annotation.objects.exists()
    passed = annotation_submit(assignment=assignment, item=item, answers=Answers(flag="unreadable"))
    assert not passed.is_draft and passed.explanation_shown_at is None


def test_a_finalised_reader_is_no_longer_kept_from_the_explanation(staged, bob_client):
    review_set, item, assignment = staged
    annotation_submit(assignment=assignment, item=item, answers=Answers(flag="unsure"))
    assignment_finalise(assignment=assignment)
    image = reverse("review-item-image", args=[review_set.pk, 1, "perturbed"])
    assert bob_client.get(image).status_code == 200


def test_the_migration_counts_a_stored_before_rating_as_shown(staged, bob):
    _, item, _ = staged
    annotation = Annotation.objects.create(item=item, reader=bob, confidence_before=3)
    migration = importlib.import_module("reviewapp.migrations.0017_annotation_explanation_shown")
    migration.backfill_shown(django_apps, None)
    annotation.refresh_from_db()
    assert annotation.explanation_shown_at == annotation.updated_at


# --- the reading screen ---------------------------------------------------------------------------------------


def test_the_reading_screen_serves_only_the_original_until_the_explanation_is_shown(staged, bob_client):
    review_set, _, _ = staged
    page = reverse("review-item", args=[review_set.pk, 1])
    text = bob_client.get(page).content.decode()
    assert "awaiting-before" in text and 'id="show-explanation"' in text
    for kind in ("reconstruction", "perturbed", "difference", "flicker"):
        url = reverse("review-item-image", args=[review_set.pk, 1, kind])
        assert url not in text
        assert bob_client.get(url).status_code == 403
    assert (
        bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, "original"])).status_code == 200
    )

    show = reverse("review-item-show-explanation", args=[review_set.pk, 1])
    refused = bob_client.post(show)
    assert refused.status_code == 400 and "confidence_before" in refused.json()["errors"]
    assert bob_client.post(show, {"confidence_before": "2"}).status_code == 200
    text = bob_client.get(page).content.decode()
    assert "awaiting-before" not in text and 'id="before-frozen-note"' in text
    assert text.count('name="confidence_before"') == text.count('name="confidence_before" value') == 5
    assert 'name="confidence_before" value="2" checked disabled' in text
    assert reverse("review-item-image", args=[review_set.pk, 1, "perturbed"]) in text
    assert (
        bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, "perturbed"])).status_code == 200
    )


def test_autosave_and_submit_refuse_a_changed_before_rating_with_409(staged, bob_client):
    review_set, _, _ = staged
    annotation = shown(staged, 2)
    before = trail(annotation)
    autosave = bob_client.post(
        reverse("review-item-autosave", args=[review_set.pk, 1]),
        {"confidence_before": "5", "confidence_after": "4", "version": str(annotation.version)},
    )
    assert autosave.status_code == 409 and "confidence_before" in autosave.json()["errors"]
    assert trail(annotation) == before

    submit = bob_client.post(
        reverse("review-item", args=[review_set.pk, 1]),
        {**ANSWERS, "confidence_before": "5", "confidence_after": "4", "version": str(annotation.version)},
    )
    assert submit.status_code == 409
    text = submit.content.decode()
    assert (
        "can no longer be changed" in text and 'name="confidence_before" value="2" checked disabled' in text
    )
    assert trail(annotation) == before


def test_autosave_refuses_answers_about_the_explanation_before_it_is_shown(staged, bob_client):
    review_set, _, _ = staged
    response = bob_client.post(
        reverse("review-item-autosave", args=[review_set.pk, 1]),
        {"confidence_before": "3", "q1_meaningful": "yes"},
    )
    assert response.status_code == 409 and not Annotation.objects.exists()


# --- the API ------------------------------------------------------------------------------------------------------


def test_the_api_keeps_the_explanation_until_it_is_shown_then_freezes_the_before_rating(staged, api_bob):
    _, item, _ = staged
    listed = api_bob.get("/api/items/").json()["results"][0]
    assert set(listed["images"]) == {"original"}
    assert listed["prob_perturbed"] is None and listed["prob_reconstruction"] is None
    early = api_bob.post("/api/annotations/", {"item": item.pk, "confidence_after": 4}, format="json")
    assert early.status_code == 409

    draft = api_bob.post("/api/annotations/", {"item": item.pk, "confidence_before": 2}, format="json")
    assert draft.status_code == 201 and draft.json()["explanation_shown_at"] is None
    reveal = api_bob.post("/api/annotations/show-explanation/", {"item": item.pk}, format="json")
    assert reveal.status_code == 200 and reveal.json()["explanation_shown_at"]
    listed = api_bob.get("/api/items/").json()["results"][0]
    assert {"perturbed", "difference", "flicker"} <= set(listed["images"])
    assert listed["prob_perturbed"] is not None

    annotation = Annotation.objects.get()
    before = trail(annotation)
    for method, url in (("post", "/api/annotations/"), ("patch", f"/api/annotations/{annotation.pk}/")):
        refused = getattr(api_bob, method)(
            url, {"item": item.pk, "confidence_before": 5, "confidence_after": 3}, format="json"
        )
        assert refused.status_code == 409, refused.content
        assert "can no longer be changed" in refused.json()["detail"]
        assert trail(annotation) == before
    resent = api_bob.post(
        "/api/annotations/show-explanation/", {"item": item.pk, "confidence_before": 4}, format="json"
    )
    assert resent.status_code == 409 and trail(annotation) == before
    kept = api_bob.post(
        "/api/annotations/", {"item": item.pk, "confidence_before": 2, "confidence_after": 3}, format="json"
    )
    assert kept.status_code == 200 and kept.json()["confidence_after"] == 3


def test_the_review_export_says_when_the_explanation_was_shown(staged, alice_client):
    """The CSV carries explanation_shown_at: after it, confidence_before could no longer change."""
    review_set, item, assignment = staged
    annotation = shown(staged, rating=3)
    annotation_submit(
        assignment=assignment,
        item=item,
        answers=Answers(
            q1_meaningful=True,
            clinical_description="opacity at the right base",
            q2_pneumonia="yes",
            confidence_before=3,
            confidence_after=5,
        ),
    )

    response = alice_client.get(reverse("export-reviews", args=[review_set.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    annotation.refresh_from_db()
    assert len(rows) == 1 and annotation.explanation_shown_at is not None
    assert rows[0]["explanation_shown_at"] == annotation.explanation_shown_at.isoformat()
    assert (rows[0]["confidence_before"], rows[0]["confidence_after"], rows[0]["confidence_change"]) == (
        "3", "5", "2",
    )  # fmt: skip


def test_the_factor_page_shows_no_explanation_of_an_item_passed_on_before_it_was_shown(staged, bob_client):
    review_set, item, assignment = staged
    annotation_submit(assignment=assignment, item=item, answers=Answers(flag="unreadable"))

    page = bob_client.get(reverse("review-factor", args=[review_set.pk, 1]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Explanation not shown yet: rate the call on item 1 first" in text
    assert reverse("review-item-image", args=[review_set.pk, 1, "stack"]) not in text

    shown(staged, rating=4)
    text = bob_client.get(reverse("review-factor", args=[review_set.pk, 1])).content.decode()
    assert reverse("review-item-image", args=[review_set.pk, 1, "stack"]) in text
