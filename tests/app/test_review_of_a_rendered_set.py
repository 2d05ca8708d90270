"""Two readers review a set rendered by the real pipeline; agreement and the export cover both of them."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from reviewapp.models import Annotation, Job, Projection, ReviewItem, ReviewSet
from reviewapp.selectors.agreement import review_set_agreement, review_set_summary
from reviewapp.services.cases import case_import_files
from reviewapp.services.review_sets import review_set_assign, review_set_create
from reviewapp.services.sweeps import sweep_launch
from reviewapp.tasks import (
    projection_run_task,
    review_set_render_task,
    sweep_prepare_task,
    sweep_run_units_task,
)
from tests.helpers.studies import tiny_case_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def rendered_set(media_root, tiny_study, alice, bob, charlie) -> ReviewSet:
    """Rendered in this test's own media folder: sweep folders are named by primary keys, which the next
    test's rows reuse."""
    case_import_files(study=tiny_study, files=tiny_case_files(4), created_by=alice)
    for job in Job.objects.filter(kind="projection", status=Job.Status.PENDING):
        projection_run_task(
            job.pk, projection_pks=list(Projection.objects.filter(job=job).values_list("pk", flat=True))
        )
    sweep = sweep_launch(study=tiny_study, created_by=alice, delta=0.02)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep_run_units_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    strongest = list(sweep.dimension_effects.order_by("rank")[:2])
    review_set = review_set_create(
        sweep=sweep,
        name="Two readers",
        dimensions=strongest,
        images_per_dimension=2,
        min_confidence=0.0,
        min_psnr=None,
        max_prob_diff=None,
    )
    review_set_render_task(review_set.job_id, review_set_pk=review_set.pk)
    review_set.refresh_from_db()
    assert review_set.status == ReviewSet.Status.READY, review_set.curation
    review_set_assign(review_set=review_set, readers=[bob, charlie], assigned_by=alice)
    return review_set


def test_two_readers_complete_a_rendered_set_and_the_admin_exports_it(
    rendered_set, bob_client, charlie_client, alice_client
):
    total = ReviewItem.objects.filter(review_set=rendered_set).count()
    answers = {
        bob_client: {
            "q1_meaningful": "yes",
            "clinical_description": "diffuse brightening",
            "q2_pneumonia": "yes",
        },
        charlie_client: {"q1_meaningful": "no", "q2_pneumonia": "not_compelling"},
    }
    for client, answer in answers.items():
        for position in range(1, total + 1):
            page = client.get(reverse("review-item", args=[rendered_set.pk, position]))
            assert page.status_code == 200
            for kind in ("original", "reconstruction", "perturbed", "difference", "flicker", "stack"):
                image = client.get(reverse("review-item-image", args=[rendered_set.pk, position, kind]))
                assert image.status_code == 200, kind
            submitted = client.post(reverse("review-item", args=[rendered_set.pk, position]), answer)
            assert submitted.status_code == 302
        assert client.post(reverse("review-set-finalise", args=[rendered_set.pk])).status_code == 302

    q1 = {r.question: r for r in review_set_agreement(review_set=rendered_set)}["q1_meaningful"]
    assert (q1.method, q1.items, q1.readers) == ("Cohen's kappa", total, 2)
    assert q1.observed == 0.0
    summary = review_set_summary(review_set=rendered_set)
    assert summary.total_items == total and summary.readers == 2

    response = alice_client.get(reverse("export-reviews", args=[rendered_set.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 * total == Annotation.objects.filter(is_draft=False).count()
    assert {r["reader"] for r in rows} == {"bob", "charlie"}
    assert {r["pneumonia_relevance"] for r in rows if r["reader"] == "charlie"} == {"not_compelling"}
    assert alice_client.get(reverse("review-set-results", args=[rendered_set.pk])).status_code == 200
