"""Counterfactual lab runs as jobs, run in this process: files written, then the row; metrics recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from reviewapp.bridge.files import media_path
from reviewapp.models import Job, LabRun
from reviewapp.services.jobs import job_request_cancel
from reviewapp.services.lab import lab_run_cancel, lab_run_create
from reviewapp.tasks import lab_run_counterfactual_task
from tests.helpers.studies import FAST_LAB_PARAMETERS as FAST
from tests.helpers.studies import projected_cases

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def lab_case(lab_study, alice):
    """A case of the lab study with its projection."""
    return projected_cases(lab_study, created_by=alice)[0]


def run_now(run: LabRun) -> LabRun:
    lab_run_counterfactual_task(run.job_id, run_pk=run.pk)
    run.refresh_from_db()
    return run


def stored(field) -> Path:
    assert field.name, "the file field is empty"
    path = media_path(field.name)
    assert path.is_file() and path.stat().st_size > 0
    return path


@pytest.mark.parametrize("method", ["gci", "dip"])
def test_a_counterfactual_run_stores_its_images_path_and_metrics(method, lab_study, lab_case, alice):
    run = lab_run_create(
        study=lab_study, case=lab_case, method=method, parameters=FAST[method], created_by=alice
    )
    assert run.status == LabRun.Status.PENDING and run.job.kind == "counterfactual"

    run = run_now(run)

    assert run.status == LabRun.Status.SUCCEEDED, run.error
    assert run.job.status == Job.Status.SUCCEEDED
    for field in (run.counterfactual_image, run.start_image, run.difference_image, run.path_gif,
                  run.flicker_gif, run.stack_image):  # fmt: skip
        assert stored(field).parent == media_path(run.folder)
    assert not run.heatmap_image
    assert 0 <= run.prob_original <= 1 and 0 <= run.prob_counterfactual <= 1 and 0 <= run.prob_start <= 1
    assert run.flipped in (True, False)
    for key in ("l1", "ssim", "changed_fraction", "cout", "seconds", "flipped"):
        assert key in run.metrics
    assert run.config["path_frames"] == 3 and run.seconds > 0
    assert run.finished_at is not None


def test_a_gci_run_starts_from_the_case_projection_and_names_the_changed_styles(lab_study, lab_case):
    run = run_now(lab_run_create(study=lab_study, case=lab_case, method="gci", parameters=FAST["gci"]))

    assert run.status == LabRun.Status.SUCCEEDED, run.error
    assert run.details["top_changed_styles"]
    assert run.parameters == {**FAST["gci"], "projection_steps": lab_study.projection_steps}


def test_a_gradcam_run_stores_a_heatmap_and_no_counterfactual_change(lab_study, lab_case):
    run = run_now(lab_run_create(study=lab_study, case=lab_case, method="gradcam"))

    assert run.status == LabRun.Status.SUCCEEDED, run.error
    stored(run.heatmap_image)
    stored(run.counterfactual_image)
    assert not run.difference_image and not run.stack_image and not run.start_image
    assert run.flipped is None
    assert run.prob_counterfactual == pytest.approx(run.prob_original)


def test_the_default_target_is_the_other_class_for_a_counterfactual_and_the_decision_for_a_map(
    lab_study, lab_case
):
    projection = lab_case.projections.get()
    decision = 1 if projection.prob_original >= 0.5 else 0

    counterfactual = lab_run_create(study=lab_study, case=lab_case, method="stylespace")
    saliency = lab_run_create(study=lab_study, case=lab_case, method="gradcam")

    assert counterfactual.target == 1 - decision
    # Grad-CAM toward the class the classifier did not decide has little positive evidence: an empty map.
    assert saliency.target == decision


def test_a_target_can_be_named_by_the_label(lab_study, lab_case):
    assert lab_run_create(study=lab_study, case=lab_case, method="gradcam", target="Pneumonia").target == 1
    assert lab_run_create(study=lab_study, case=lab_case, method="gradcam", target="no pneumonia").target == 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"method": "magic"}, "Unknown method"),
        ({"method": "gci", "parameters": {"stepz": 3}}, "Unknown option(s) for gci: stepz"),
        ({"method": "gci", "parameters": {"steps": "ten"}}, "steps must be int"),
        ({"method": "gci", "parameters": {"steps": 0}}, "steps must be at least 1"),
        ({"method": "gci", "parameters": {"steps": 10**30}}, "steps must be at most 10000"),
        ({"method": "gci", "parameters": {"batch_size": 10**9}}, "batch_size must be at most 256"),
        ({"method": "dip", "parameters": {"channels": [10**6] * 4}}, "channels\\[0\\] must be at most 512"),
        ({"method": "gradcam", "target": "-1"}, "target must be 0, 1"),
        ({"method": "dip", "parameters": {"channels": ["a"]}}, "channels must be a list of int"),
        ({"method": "gradcam", "target": "maybe"}, "target must be 0, 1"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_stored(lab_study, lab_case, arguments, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lab_run_create(study=lab_study, case=lab_case, **arguments)
    assert not LabRun.objects.exists()
    assert not Job.objects.filter(kind="counterfactual").exists()


def test_a_case_of_another_study_is_refused(lab_study, lab_case, alice, tiny_lab_models):
    from tests.helpers.studies import registered_study

    other = registered_study(created_by=alice, models=tiny_lab_models, name="Other study")
    with pytest.raises(ValidationError, match="another study"):
        lab_run_create(study=other, case=lab_case, method="gradcam")
    assert not LabRun.objects.exists()


def test_a_failing_run_is_marked_failed_and_points_at_no_file(lab_study, lab_case):
    run = lab_run_create(study=lab_study, case=lab_case, method="gradcam", parameters={"layer": "no.such"})

    with pytest.raises(Exception, match="no.such"):
        run_now(run)

    run.refresh_from_db()
    assert run.status == LabRun.Status.FAILED and "no.such" in run.error
    assert run.job.status == Job.Status.FAILED
    assert not run.folder and not run.counterfactual_image and not run.heatmap_image
    assert not (
        media_path(f"studies/{lab_study.pk}/lab").exists()
        and any(media_path(f"studies/{lab_study.pk}/lab").iterdir())
    )


def test_a_run_cancelled_before_it_starts_never_runs(lab_study, lab_case):
    run = lab_run_create(study=lab_study, case=lab_case, method="gradcam")
    lab_run_cancel(run=run)
    assert run.status == LabRun.Status.CANCELLED

    run = run_now(run)

    assert run.status == LabRun.Status.CANCELLED and not run.folder


def test_a_running_run_stops_when_cancelled_and_keeps_no_files(lab_study, lab_case):
    run = lab_run_create(study=lab_study, case=lab_case, method="gci", parameters=FAST["gci"])
    from reviewapp.services.jobs import job_start
    from reviewapp.services.leases import lease_begin

    # A live worker holds the run's message.
    lease_begin(job=run.job, task_id=run.job.celery_task_id, task_name="lab", kwargs={"run_pk": run.pk})
    job_start(job=run.job)
    job_request_cancel(job=run.job)

    run = run_now(run)

    assert run.status == LabRun.Status.CANCELLED
    assert run.job.status == Job.Status.CANCELLED
    assert not run.folder


def test_a_latent_shift_run_needs_the_study_autoencoder_and_stores_its_sequence(
    lab_study, lab_case, alice, tmp_path
):
    from explain_engine.autoencoder import ImageAutoencoder
    from explain_engine.checkpoints import save_networks

    with pytest.raises(ValidationError, match="needs an autoencoder"):
        lab_run_create(study=lab_study, case=lab_case, method="latentshift", created_by=alice)
    assert not LabRun.objects.exists()
    ae = save_networks(
        tmp_path / "ae.pt", {"AE": ImageAutoencoder(img_resolution=16, channels=(4, 8), latent_channels=2)}
    )
    lab_study.autoencoder_path = str(ae)
    lab_study.save()
    run = run_now(
        lab_run_create(
            study=lab_study,
            case=lab_case,
            method="latentshift",
            parameters={"max_steps": 5, "path_frames": 4},
            created_by=alice,
        )
    )
    assert run.status == LabRun.Status.SUCCEEDED, run.error
    for field in (
        run.counterfactual_image,
        run.start_image,
        run.difference_image,
        run.path_gif,
        run.flicker_gif,
    ):
        assert stored(field).parent == media_path(run.folder)
    assert run.details["search_steps"] <= 5 and run.config["path_frames"] == 4
    assert 0 <= run.prob_start <= 1 and "cout" in run.metrics
