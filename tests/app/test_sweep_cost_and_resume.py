"""What a sweep will cost before launch, its live figures and steadier ETA, and resuming a cancelled sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import Job, Sweep, SweepUnit
from reviewapp.selectors.jobs import job_eta_seconds
from reviewapp.selectors.sweeps import (
    sweep_eta_seconds,
    sweep_planned_perturbations,
    sweep_rate,
    sweep_rate_for_study,
)
from reviewapp.services.jobs import JobCancelled, job_start
from reviewapp.services.leases import lease_begin
from reviewapp.services.sweeps import (
    sweep_cancel,
    sweep_launch,
    sweep_resume,
    sweep_run_units,
    sweep_unit_claim,
    sweep_unit_finish,
)
from reviewapp.tasks import sweep_prepare_task
from tests.helpers.studies import prepared_sweep as launch_prepared_sweep
from tests.helpers.studies import projected_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def projected_study(tiny_study):
    projected_cases(tiny_study, count=5)
    return tiny_study


@pytest.fixture
def prepared_sweep(projected_study, alice, settings):
    settings.SWEEP_GALLERIES_AT_FINISH = 1
    return launch_prepared_sweep(projected_study, created_by=alice)


def finish_unit(
    sweep: Sweep, *, started_s_ago: float, took_s: float, perturbations: int, device: str = ""
) -> SweepUnit:
    """Claim and finish a unit as if it had run ``took_s`` seconds, starting ``started_s_ago`` seconds ago."""
    unit = sweep_unit_claim(sweep=sweep, task_id="part-a")
    sweep_unit_finish(unit=unit, job=sweep.job, seconds=took_s, perturbations=perturbations, device=device)
    started = timezone.now() - timedelta(seconds=started_s_ago)
    SweepUnit.objects.filter(pk=unit.pk).update(
        started_at=started, finished_at=started + timedelta(seconds=took_s)
    )
    # The job started before its units did.
    Job.objects.filter(pk=sweep.job_id, started_at__gt=started).update(
        started_at=started - timedelta(seconds=5)
    )
    sweep.refresh_from_db()
    return unit


def test_the_planned_perturbations_follow_the_mode():
    assert sweep_planned_perturbations(mode="exact", images=200, dims=1408, screening_top_k=64) == 563_200
    assert sweep_planned_perturbations(mode="screening", images=10, dims=1408, screening_top_k=64) == 10 * 129
    assert sweep_planned_perturbations(mode="screening", images=1, dims=8, screening_top_k=64) == 17


def test_the_rate_is_measured_on_the_finished_units_in_wall_time(prepared_sweep):
    job_start(job=prepared_sweep.job)
    finish_unit(prepared_sweep, started_s_ago=30, took_s=10, perturbations=400)  # 30 s ago .. 20 s ago

    rate = sweep_rate(sweep=prepared_sweep)

    assert rate is not None
    assert rate.seconds == pytest.approx(10, abs=0.01)
    assert rate.perturbations_per_second == pytest.approx(40, rel=0.01)


def test_the_eta_of_a_running_sweep_uses_the_rate_of_its_units_not_its_whole_run(prepared_sweep):
    job = prepared_sweep.job
    job_start(job=job)
    # The job has run 10 minutes (model loading, planning), but a unit takes 20 s.
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    job.refresh_from_db()
    finish_unit(prepared_sweep, started_s_ago=25, took_s=20, perturbations=400)
    job.refresh_from_db()
    left = SweepUnit.objects.filter(sweep=prepared_sweep).exclude(status="done").count()

    assert sweep_eta_seconds(sweep=prepared_sweep) == pytest.approx(20 * left, rel=0.01)
    assert job_eta_seconds(job=job) == pytest.approx(20 * left, rel=0.01)


def test_no_estimate_without_a_sweep_of_the_models(projected_study):
    assert sweep_rate_for_study(study=projected_study) is None


def test_the_launch_form_estimates_the_time_from_the_last_sweep(prepared_sweep, alice_client):
    job_start(job=prepared_sweep.job)
    finish_unit(prepared_sweep, started_s_ago=100, took_s=10, perturbations=100)  # 10 perturbations/s
    study = prepared_sweep.study
    planned = 2 * 5 * study.style_dims

    page = alice_client.get(reverse("sweep-new", args=[study.pk])).content.decode()

    assert f'data-estimate="perturbations">{planned}<' in page
    seconds = planned / 10
    expected = f"{round(seconds)} s" if seconds < 60 else f"{round(seconds / 60)} min"
    assert f'data-estimate="duration">{expected}<' in page
    assert f'Measured on sweep <a href="{reverse("sweep", args=[prepared_sweep.pk])}">' in page
    assert 'data-perturbations-per-second="10.0' in page


def test_the_estimate_names_the_hardware_it_was_measured_on(prepared_sweep, alice_client):
    job_start(job=prepared_sweep.job)
    gpu = "cuda:0 (NVIDIA H200, 139 GiB)"
    finish_unit(prepared_sweep, started_s_ago=100, took_s=10, perturbations=100, device=gpu)

    rate = sweep_rate_for_study(study=prepared_sweep.study)
    page = alice_client.get(reverse("sweep-new", args=[prepared_sweep.study.pk])).content.decode()
    sweep_page = alice_client.get(reverse("sweep", args=[prepared_sweep.pk])).content.decode()

    assert rate is not None and rate.devices == (gpu,)
    assert f'run on <span data-estimate="devices">{gpu}</span>' in page
    assert "a worker on another device" in " ".join(page.split())
    assert f"<dt>Ran on</dt><dd>{gpu}</dd>" in sweep_page


def test_without_recorded_devices_the_estimate_names_none(prepared_sweep, alice_client):
    job_start(job=prepared_sweep.job)
    finish_unit(prepared_sweep, started_s_ago=100, took_s=10, perturbations=100)

    page = alice_client.get(reverse("sweep-new", args=[prepared_sweep.study.pk])).content.decode()
    sweep_page = alice_client.get(reverse("sweep", args=[prepared_sweep.pk])).content.decode()

    assert 'data-estimate="duration"' in page
    assert 'data-estimate="devices"' not in page and "Ran on" not in sweep_page


def test_the_launch_form_says_when_the_rate_is_not_known(projected_study, alice_client):
    page = alice_client.get(reverse("sweep-new", args=[projected_study.pk])).content.decode()

    assert "the rate is not known" in page
    assert 'data-estimate="duration"' not in page


def test_the_sweep_page_polls_live_figures(prepared_sweep, alice_client):
    job_start(job=prepared_sweep.job)
    finish_unit(prepared_sweep, started_s_ago=30, took_s=10, perturbations=400)

    page = alice_client.get(reverse("sweep", args=[prepared_sweep.pk])).content.decode()
    state = alice_client.get(reverse("sweep-progress", args=[prepared_sweep.pk])).json()

    assert f'data-sweep-progress="{reverse("sweep-progress", args=[prepared_sweep.pk])}"' in page
    assert 'data-sweep-field="perturbations"' in page
    assert 'data-confirm="Cancel sweep' in page
    assert state["perturbations"] == 400
    assert state["units_done"] == 1
    assert state["units_total"] == SweepUnit.objects.filter(sweep=prepared_sweep).count()
    assert state["perturbations_per_second"] == pytest.approx(40, rel=0.01)
    assert state["eta_seconds"] is not None


def test_a_reviewer_cannot_poll_a_sweep(prepared_sweep, bob_client):
    assert bob_client.get(reverse("sweep-progress", args=[prepared_sweep.pk])).status_code == 403


def test_a_cancelled_sweep_resumes_with_its_finished_units_and_finishes(prepared_sweep, alice):
    old_job = prepared_sweep.job
    job_start(job=old_job)
    finished = finish_unit(prepared_sweep, started_s_ago=30, took_s=10, perturbations=400)
    sweep_cancel(sweep=prepared_sweep)
    with pytest.raises(JobCancelled):
        sweep_run_units(sweep=prepared_sweep, job=old_job, task_id="part-b")
    prepared_sweep.refresh_from_db()
    assert prepared_sweep.status == Sweep.Status.CANCELLED

    resumed = sweep_resume(sweep=prepared_sweep, created_by=alice)

    assert resumed.status == Sweep.Status.RUNNING
    assert resumed.job_id != old_job.pk
    assert resumed.job.status == Job.Status.PENDING
    assert resumed.job.progress == pytest.approx(1 / 4)  # 1 of 3 units done, selection counts as one more
    assert SweepUnit.objects.get(pk=finished.pk).status == SweepUnit.Status.DONE
    assert resumed.perturbations == 400

    job_start(job=resumed.job)
    sweep_run_units(sweep=resumed, job=resumed.job, task_id="part-c")

    resumed.refresh_from_db()
    assert resumed.status == Sweep.Status.SUCCEEDED
    assert not SweepUnit.objects.filter(sweep=resumed).exclude(status="done").exists()
    assert resumed.dimension_effects.count() == resumed.dims
    # the units this worker ran record its device: the CPU here (ENGINE_DEVICE "auto" without a GPU)
    ran_here = SweepUnit.objects.filter(sweep=resumed).exclude(pk=finished.pk)
    assert {unit.device for unit in ran_here} == {f"cpu ({torch.get_num_threads()} threads)"}


def test_a_sweep_cancelled_before_planning_resumes_from_the_plan(projected_study, alice):
    sweep = sweep_launch(study=projected_study, created_by=alice)
    sweep_cancel(sweep=sweep)

    resumed = sweep_resume(sweep=sweep, created_by=alice)

    assert resumed.status == Sweep.Status.PENDING
    sweep_prepare_task(resumed.job_id, sweep_pk=resumed.pk)
    resumed.refresh_from_db()
    assert resumed.status == Sweep.Status.RUNNING
    assert SweepUnit.objects.filter(sweep=resumed).exists()


def test_only_a_cancelled_sweep_resumes(prepared_sweep, alice):
    with pytest.raises(ValidationError, match="Only a cancelled sweep"):
        sweep_resume(sweep=prepared_sweep, created_by=alice)


def test_a_sweep_whose_parts_are_still_stopping_waits(prepared_sweep, alice):
    job_start(job=prepared_sweep.job)
    # a live part (its lease is fresh) is still inside this unit
    lease_begin(job=prepared_sweep.job, task_id="part-a", task_name="sweep part", kwargs={})
    sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")
    sweep_cancel(sweep=prepared_sweep)
    Sweep.objects.filter(pk=prepared_sweep.pk).update(status="cancelled", finished_at=timezone.now())

    with pytest.raises(ValidationError, match="still finishing"):
        sweep_resume(sweep=prepared_sweep, created_by=alice)


def test_the_resume_button_resumes_and_reports(prepared_sweep, alice_client):
    sweep_cancel(sweep=prepared_sweep)
    job_start(job=prepared_sweep.job)
    Sweep.objects.filter(pk=prepared_sweep.pk).update(status="cancelled", finished_at=timezone.now())
    page = alice_client.get(reverse("sweep", args=[prepared_sweep.pk])).content.decode()
    assert reverse("sweep-resume", args=[prepared_sweep.pk]) in page

    response = alice_client.post(reverse("sweep-resume", args=[prepared_sweep.pk]), follow=True)

    prepared_sweep.refresh_from_db()
    assert prepared_sweep.status == Sweep.Status.RUNNING
    assert "resumes" in response.content.decode()
    again = alice_client.post(reverse("sweep-resume", args=[prepared_sweep.pk]), follow=True)
    assert "Only a cancelled sweep can be resumed." in again.content.decode()
