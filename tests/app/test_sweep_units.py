"""A sweep is split into units that parts take with a conditional update; the last part selects."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from reviewapp.models import Job, Sweep, SweepUnit
from reviewapp.services.cases import case_import_files
from reviewapp.services.jobs import JobContinues, job_start
from reviewapp.services.sweeps import (
    sweep_cancel,
    sweep_launch,
    sweep_run_units,
    sweep_unit_claim,
    sweep_unit_finish,
)
from tests.helpers.studies import prepared_sweep as launch_prepared_sweep
from tests.helpers.studies import projected_cases, tiny_case_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def projected_study(tiny_study):
    projected_cases(tiny_study, count=3)
    return tiny_study


@pytest.fixture
def prepared_sweep(projected_study, alice, settings):
    settings.SWEEP_GALLERIES_AT_FINISH = 1
    return launch_prepared_sweep(projected_study, created_by=alice)


def test_launching_needs_projected_cases(tiny_study, alice):
    case_import_files(study=tiny_study, files=tiny_case_files(1))

    with pytest.raises(ValidationError, match="no finished projection"):
        sweep_launch(study=tiny_study, created_by=alice)


def test_preparing_plans_the_units_and_keeps_the_job_running(prepared_sweep):
    units = SweepUnit.objects.filter(sweep=prepared_sweep)

    assert prepared_sweep.status == Sweep.Status.RUNNING
    assert units.count() == 2 * 1  # 3 images in chunks of 2, all dimensions in one chunk of 128
    assert prepared_sweep.job.status == Job.Status.RUNNING
    assert prepared_sweep.job.progress == 0.0


def test_two_parts_never_take_the_same_unit(prepared_sweep):
    first = sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")
    second = sweep_unit_claim(sweep=prepared_sweep, task_id="part-b")
    third = sweep_unit_claim(sweep=prepared_sweep, task_id="part-c")

    assert first.index != second.index
    assert third is None


def test_a_redelivered_part_takes_back_its_own_unit(prepared_sweep):
    held = sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")

    again = sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")

    assert again.pk == held.pk
    assert SweepUnit.objects.filter(status=SweepUnit.Status.RUNNING).count() == 1


def test_a_part_hands_over_while_another_holds_a_unit_and_the_last_one_selects(prepared_sweep):
    job = prepared_sweep.job
    held = sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")

    with pytest.raises(JobContinues):
        sweep_run_units(sweep=prepared_sweep, job=job, task_id="part-b")
    assert prepared_sweep.job.progress < 1.0

    message = sweep_run_units(sweep=prepared_sweep, job=job, task_id="part-a")

    prepared_sweep.refresh_from_db()
    assert SweepUnit.objects.get(pk=held.pk).status == SweepUnit.Status.DONE
    assert prepared_sweep.status == Sweep.Status.SUCCEEDED
    assert "selected" in message
    assert prepared_sweep.dimension_effects.count() == prepared_sweep.dims


def test_progress_counts_finished_units(prepared_sweep):
    unit = sweep_unit_claim(sweep=prepared_sweep, task_id="part-a")

    sweep_unit_finish(unit=unit, job=prepared_sweep.job, seconds=1.5, perturbations=100)

    prepared_sweep.job.refresh_from_db()
    assert prepared_sweep.job.progress == pytest.approx(1 / 3)  # 1 of 2 units, selection counts as one more
    assert prepared_sweep.job.message == "1 of 2 units"


def test_a_pending_sweep_is_cancelled_at_once(projected_study, alice):
    sweep = sweep_launch(study=projected_study, created_by=alice)

    sweep_cancel(sweep=sweep)

    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.CANCELLED
    assert sweep.job.status == Job.Status.CANCELLED


def test_a_running_sweep_stops_at_its_next_unit_and_keeps_finished_ones(prepared_sweep):
    job = prepared_sweep.job
    job_start(job=job)
    sweep_cancel(sweep=prepared_sweep)

    from reviewapp.services.jobs import JobCancelled

    with pytest.raises(JobCancelled):
        sweep_run_units(sweep=prepared_sweep, job=job, task_id="part-a")

    prepared_sweep.refresh_from_db()
    assert prepared_sweep.status == Sweep.Status.CANCELLED
    assert not SweepUnit.objects.filter(status=SweepUnit.Status.RUNNING).exists()
