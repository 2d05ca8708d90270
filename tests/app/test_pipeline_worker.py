"""The whole admin pipeline through a real worker: study -> cases -> projections -> sweep -> review set.

Driven through the pages as an admin does it; the sweep's progress endpoint is polled while it runs.
"""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from reviewapp.models import Job, Projection, ReviewSet, Study, Sweep
from tests.helpers.studies import tiny_case_files


def wait_for(condition, *, timeout_s: float, worker, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"Timed out after {timeout_s} s. Worker log:\n{worker.log()[-4000:]}")


@pytest.mark.timeout(240)
def test_an_admin_goes_from_checkpoints_to_an_assigned_review_set(
    transactional_db, celery_worker, alice_client, bob_client, bob, tiny_models
):
    generator, classifier = tiny_models
    response = alice_client.post(
        reverse("study-new"),
        {
            "name": "Worker study",
            "target_label": "Pneumonia",
            "generator_path": str(generator),
            "classifier_source": str(classifier),
            "projection_steps": 5,
            "projection_batch_size": 3,
            "ranges_samples": 200,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(name="Worker study")

    files = [(name, data) for name, data in tiny_case_files(3)]
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploads = [SimpleUploadedFile(name, data) for name, data in files]
    response = alice_client.post(
        reverse("study-case-upload", args=[study.pk]), {"files": uploads, "split": "heldout"}
    )
    assert response.status_code == 302

    def projected() -> bool:
        return Projection.objects.filter(case__study=study, status=Projection.Status.SUCCEEDED).count() == 3

    wait_for(projected, timeout_s=120, worker=celery_worker)

    response = alice_client.post(
        reverse("sweep-new", args=[study.pk]),
        {
            "cases": list(study.cases.values_list("pk", flat=True)),
            "mode": "exact",
            "screening_top_k": 64,
            "aggregate": "mean_abs",
            "delta": 0.99,
            "min_fraction": 0.1,
        },
    )
    assert response.status_code == 302
    sweep = Sweep.objects.get(study=study)
    progress_url = reverse("job-progress", args=[sweep.job_id])
    seen = []

    def sweep_finished() -> bool:
        payload = alice_client.get(progress_url).json()
        seen.append(payload["progress"])
        return payload["finished"]

    wait_for(sweep_finished, timeout_s=90, worker=celery_worker, every_s=0.05)
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.SUCCEEDED, (sweep.error, sweep.job.error, celery_worker.log()[-3000:])
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen), seen
    assert any(0.0 < value < 1.0 for value in seen), seen
    assert sweep.dimension_effects.count() == study.style_dims
    assert "Dimensions" in alice_client.get(reverse("sweep", args=[sweep.pk])).content.decode()

    strongest = sweep.dimension_effects.order_by("rank").first()
    response = alice_client.post(
        reverse("review-set-new", args=[sweep.pk]),
        {
            "name": "Worker set",
            "dimensions": [strongest.pk],
            "images_per_dimension": 2,
            "min_confidence": 0.0,
            "min_psnr": "",
            "max_prob_diff": "",
            "blinded": "on",
        },  # fmt: skip
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    review_set = ReviewSet.objects.get(name="Worker set")
    wait_for(lambda: ReviewSet.objects.get(pk=review_set.pk).status != ReviewSet.Status.RENDERING,
             timeout_s=60, worker=celery_worker)  # fmt: skip
    review_set.refresh_from_db()
    assert review_set.status == ReviewSet.Status.READY, review_set.curation
    assert review_set.items.count() == 2
    assert Job.objects.get(pk=review_set.job_id).status == Job.Status.SUCCEEDED

    alice_client.post(reverse("review-set-assign", args=[review_set.pk]), {"readers": [bob.pk]})
    assert "Worker set" in bob_client.get(reverse("worklist")).content.decode()
