"""Sweeps: launch, fan out over workers by unit, select dimensions, cancel.

One sweep has one job, which the browser polls. ``sweep_prepare`` (the first task) creates the deltas files
and one :class:`SweepUnit` row per unit, and sends ``SWEEP_PARALLEL_TASKS`` part tasks on the same job. Each
part claims pending units with a conditional update until none is left; the part that finishes the last unit
selects the dimensions and finishes the job. A redelivered part takes back the units it had claimed; the
engine skips units whose results are already on disk.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from reviewapp import plots
from reviewapp.bridge import sweeps as sweep_bridge
from reviewapp.bridge.files import write_media
from reviewapp.models import Case, DimensionEffect, Job, Study, Sweep, SweepCase, SweepUnit
from reviewapp.selectors.projections import latest_projections
from reviewapp.selectors.sweeps import sweep_projections
from reviewapp.services.dimensions import dimension_render_gallery
from reviewapp.services.jobs import (
    JobCancelled,
    JobContinues,
    Tasks,
    job_abort_fn,
    job_create,
    job_enqueue,
    job_progress,
    job_request_cancel,
    job_step,
)

#: The Sweep fields a sweep is launched with: the engine's SweepConfig and SelectionConfig parameters.
SWEEP_PARAMETERS = ("mode", "screening_top_k", "aggregate", "delta", "min_fraction", "strongest_k", "rule")


@transaction.atomic
def sweep_launch(
    *,
    study: Study,
    cases: Sequence[Case] | None = None,
    created_by: AbstractBaseUser | None = None,
    **parameters,
) -> Sweep:
    """Create a sweep of ``cases`` (default: every projected held-out case) and queue it.

    ``parameters`` are Sweep fields (``SWEEP_PARAMETERS``); missing ones take the engine's defaults. The
    engine's ``SweepConfig`` is built here, once, and stored in ``Sweep.config``: every part of the sweep runs
    with it, whatever the settings of the worker that takes it. Raises ``ValidationError`` when the study is
    not ready or a case is not projected.
    """
    unknown = set(parameters) - set(SWEEP_PARAMETERS)
    if unknown:
        raise TypeError(f"Unknown sweep parameters: {', '.join(sorted(unknown))}")
    if not study.has_ranges:
        raise ValidationError("The study's style ranges are not estimated yet.")
    if cases is None:
        cases = list(study.cases.filter(split=Case.Split.HELDOUT).order_by("pk"))
    projections = latest_projections(cases=cases)
    missing = [case.original_filename for case in cases if case.pk not in projections]
    if missing:
        raise ValidationError(
            f"{len(missing)} case(s) have no finished projection yet: {', '.join(missing[:5])}"
            + ("…" if len(missing) > 5 else "")
        )
    if not cases:
        raise ValidationError("Choose at least one projected held-out case.")
    if any(case.study_id != study.pk for case in cases):
        raise ValidationError("Every case must belong to the study.")
    if len({case.pk for case in cases}) != len(cases):
        raise ValidationError("Give each case once.")
    sweep = Sweep(study=study, created_by=created_by, num_images=len(cases), dims=study.style_dims or 0)
    for name, value in parameters.items():
        setattr(sweep, name, value)
    sweep.full_clean(exclude=["study", "job"])
    sweep.config = sweep_bridge.new_sweep_config(sweep)
    sweep.save()
    SweepCase.objects.bulk_create(
        SweepCase(sweep=sweep, projection=projections[case.pk], index=index)
        for index, case in enumerate(cases)
    )
    job = job_create(
        kind="sweep", created_by=created_by, message=f"{study.name}: {len(cases)} images, {sweep.mode} mode"
    )
    sweep.job = job
    sweep.deltas_dir = sweep_bridge.new_sweep_folder(sweep)
    sweep.save(update_fields=["job", "deltas_dir"])
    job_enqueue(job=job, task=Tasks.SWEEP_PREPARE, kwargs={"sweep_pk": sweep.pk})
    return sweep


def sweep_prepare(*, sweep: Sweep, job: Job) -> None:
    """Create the sweep's files and units, then hand the work to the part tasks (raises JobContinues)."""
    if sweep.status not in (Sweep.Status.PENDING, Sweep.Status.RUNNING):
        return
    with job_step(failed=lambda error: sweep_mark_failed(sweep=sweep, error=error)):
        runner = sweep_bridge.SweepRunner(sweep, sweep_projections(sweep))
        plan = runner.prepare()
    sweep_record_plan(sweep=sweep, job=job, plan=plan, config=runner.engine_config)
    raise JobContinues


@transaction.atomic
def sweep_record_plan(*, sweep: Sweep, job: Job, plan: Sequence[dict], config: dict) -> None:
    """Store the units (once) and send the part tasks when this commits."""
    SweepUnit.objects.bulk_create([SweepUnit(sweep=sweep, **unit) for unit in plan], ignore_conflicts=True)
    Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.PENDING).update(
        status=Sweep.Status.RUNNING,
        started_at=timezone.now(),
        config=config,
    )
    sweep.refresh_from_db()
    job_progress(job=job, done=0, total=len(plan), message=f"0 of {len(plan)} units")
    parts = max(1, min(settings.SWEEP_PARALLEL_TASKS, len(plan)))
    for _ in range(parts):
        job_enqueue(job=job, task=Tasks.SWEEP_RUN_UNITS, kwargs={"sweep_pk": sweep.pk})


def sweep_run_units(*, sweep: Sweep, job: Job, task_id: str) -> str:
    """Take units until none is left; the part that finds all units done selects the dimensions.

    Raises ``JobContinues`` when other parts still hold units, ``JobCancelled`` when the job was cancelled.
    """
    abort_fn = job_abort_fn(job)
    runner = None
    while True:
        if abort_fn():
            sweep_mark_cancelled(sweep=sweep, task_id=task_id)
            raise JobCancelled
        unit = sweep_unit_claim(sweep=sweep, task_id=task_id)
        if unit is None:
            break
        with job_step(
            failed=lambda error: sweep_mark_failed(sweep=sweep, error=error),
            cancelled=lambda: sweep_mark_cancelled(sweep=sweep, task_id=task_id),
        ):
            runner = runner or sweep_bridge.SweepRunner(sweep, sweep_projections(sweep))
            seconds, perturbations = runner.run_units([unit.index], abort_fn=abort_fn)
        sweep_unit_finish(
            unit=unit, job=job, seconds=seconds, perturbations=perturbations, device=runner.device
        )
    if not sweep_claim_finalisation(sweep=sweep):
        raise JobContinues
    with job_step(failed=lambda error: sweep_mark_failed(sweep=sweep, error=error)):
        return sweep_finalise(sweep=sweep, job=job)


@transaction.atomic
def sweep_unit_claim(*, sweep: Sweep, task_id: str) -> SweepUnit | None:
    """The next unit for this task: one it had claimed before (redelivery), else a pending one."""
    if not Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).exists():
        return None
    own = SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.RUNNING, claimed_by=task_id).first()
    if own is not None:
        return own
    for unit in SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.PENDING).order_by("index")[:8]:
        # Conditional update: of two workers racing for a unit, exactly one gets it.
        claimed = SweepUnit.objects.filter(pk=unit.pk, status=SweepUnit.Status.PENDING).update(
            status=SweepUnit.Status.RUNNING,
            claimed_by=task_id,
            attempts=F("attempts") + 1,
            started_at=timezone.now(),
        )
        if claimed:
            unit.refresh_from_db()
            return unit
    return None


@transaction.atomic
def sweep_unit_finish(
    *, unit: SweepUnit, job: Job, seconds: float, perturbations: int, device: str = ""
) -> bool:
    """Record a unit done by the task that holds it, with the device it ran on; False (nothing recorded) when
    the task lost it (its lease was reclaimed and the unit handed to another task), so no unit is ever counted
    twice."""
    device = device[: SweepUnit._meta.get_field("device").max_length]
    finished = SweepUnit.objects.filter(
        pk=unit.pk, status=SweepUnit.Status.RUNNING, claimed_by=unit.claimed_by
    ).update(status=SweepUnit.Status.DONE, seconds=seconds, finished_at=timezone.now(), device=device)
    if not finished:
        return False
    Sweep.objects.filter(pk=unit.sweep_id).update(
        compute_seconds=F("compute_seconds") + seconds, perturbations=F("perturbations") + perturbations
    )
    units = SweepUnit.objects.filter(sweep_id=unit.sweep_id)
    total = units.count()
    done = units.filter(status=SweepUnit.Status.DONE).count()
    # The last step (selection and galleries) is kept out of the bar until it is done.
    job_progress(job=job, done=done, total=total + 1, message=f"{done} of {total} units")
    return True


@transaction.atomic
def sweep_claim_finalisation(*, sweep: Sweep) -> bool:
    """True for exactly one caller, once every unit is done."""
    if SweepUnit.objects.filter(sweep=sweep).exclude(status=SweepUnit.Status.DONE).exists():
        return False
    claimed = Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).update(
        status=Sweep.Status.FINALISING
    )
    return bool(claimed)


def sweep_finalise(*, sweep: Sweep, job: Job) -> str:
    """Rank every dimension, store the effects, render the selected dimensions' galleries, finish.

    A screening sweep first makes its ``SWEEP_SCREENING_REFINE`` strongest dimensions exact on every image."""
    if sweep.mode == "screening" and settings.SWEEP_SCREENING_REFINE > 0:
        units = sweep.units.count()
        job_progress(
            job=job,
            done=units,
            total=units + 1,
            message=f"Evaluating the {settings.SWEEP_SCREENING_REFINE} strongest dimensions exactly",
        )
        runner = sweep_bridge.SweepRunner(sweep, sweep_projections(sweep))
        refined = runner.refine_screening(settings.SWEEP_SCREENING_REFINE)
        # ``refined`` counts every refinement of the sweep so far; what is not in the database yet is added once
        # (a rerun after a lost worker adds only what that worker did not record)
        Sweep.objects.filter(pk=sweep.pk, refined_perturbations__lt=refined).update(
            perturbations=F("perturbations") + refined - F("refined_perturbations"),
            refined_perturbations=refined,
        )
    precision = sweep_bridge.sweep_precision_facts(sweep)
    selection = sweep_bridge.sweep_selection(sweep, tolerance=precision["tolerance"])
    Sweep.objects.filter(pk=sweep.pk).update(**precision)
    for name, value in precision.items():
        setattr(sweep, name, value)
    rows = sweep_bridge.dimension_effect_fields(selection)
    plot_name = write_media(
        f"{sweep_bridge.sweep_folder(sweep)}/effects.png",
        plots.effect_overview_png(
            rows,
            delta=selection.threshold,
            aggregate=sweep.get_aggregate_display(),
        ),
    )
    sweep_record_selection(sweep=sweep, rows=rows, effect_plot=plot_name)
    selected = list(
        sweep.dimension_effects.filter(selected=True).order_by("rank")[: settings.SWEEP_GALLERIES_AT_FINISH]
    )
    units = sweep.units.count()
    for index, dimension in enumerate(selected):
        job_progress(
            job=job,
            done=units + index / len(selected),
            total=units + 1,
            message=f"Rendering the gallery of dimension {dimension.dim}",
        )
        dimension_render_gallery(dimension=dimension)
    sweep_mark_succeeded(sweep=sweep)
    return (
        f"Swept {sweep.dims} dimensions of {sweep.num_images} images; "
        f"{len(selection.selected)} selected, {len(selection.borderline)} borderline (delta {sweep.delta})."
    )


@transaction.atomic
def sweep_record_selection(*, sweep: Sweep, rows: Sequence[dict], effect_plot: str) -> None:
    DimensionEffect.objects.filter(sweep=sweep).delete()
    DimensionEffect.objects.bulk_create(
        [DimensionEffect(sweep=sweep, **row) for row in rows], batch_size=1000
    )
    Sweep.objects.filter(pk=sweep.pk).update(
        effect_plot=effect_plot,
        num_selected=sum(1 for row in rows if row["selected"]),
        **sweep_bridge.sweep_deltas_facts(sweep),
    )


@transaction.atomic
def sweep_mark_succeeded(*, sweep: Sweep) -> None:
    Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.FINALISING).update(
        status=Sweep.Status.SUCCEEDED, finished_at=timezone.now()
    )
    sweep.refresh_from_db()


@transaction.atomic
def sweep_mark_failed(*, sweep: Sweep, error: str) -> None:
    Sweep.objects.filter(pk=sweep.pk).exclude(
        status__in=[Sweep.Status.SUCCEEDED, Sweep.Status.CANCELLED]
    ).update(status=Sweep.Status.FAILED, error=error, finished_at=timezone.now())
    sweep.refresh_from_db()


@transaction.atomic
def sweep_mark_cancelled(*, sweep: Sweep, task_id: str = "") -> None:
    """Stop the sweep; the units this task held (no task: every unit held) go back to pending (their finished
    results are kept)."""
    held = SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.RUNNING)
    if task_id:
        held = held.filter(claimed_by=task_id)
    held.update(status=SweepUnit.Status.PENDING, claimed_by="")
    Sweep.objects.filter(pk=sweep.pk).filter(
        Q(status=Sweep.Status.PENDING) | Q(status=Sweep.Status.RUNNING) | Q(status=Sweep.Status.FINALISING)
    ).update(status=Sweep.Status.CANCELLED, finished_at=timezone.now())
    sweep.refresh_from_db()


@transaction.atomic
def sweep_cancel(*, sweep: Sweep) -> None:
    """Ask the sweep to stop: at once when it has not started, else when its parts next check."""
    if sweep.job is not None:
        job_request_cancel(job=sweep.job)
        if sweep.job.status == Job.Status.CANCELLED:
            sweep_mark_cancelled(sweep=sweep)
    else:
        sweep_mark_cancelled(sweep=sweep)


#: A unit still marked running this long after its sweep was cancelled belongs to a worker that is gone.
RESUME_STALE_UNIT_SECONDS = 10 * 60


@transaction.atomic
def sweep_resume(*, sweep: Sweep, created_by: AbstractBaseUser | None = None) -> Sweep:
    """Continue a cancelled sweep on a new job: its finished units are kept, the others run.

    A sweep cancelled before its units were planned starts again from the plan. Raises ``ValidationError``
    when the sweep is not cancelled, or when parts of the cancelled run are still finishing their units.
    """
    sweep = Sweep.objects.select_for_update().select_related("study").get(pk=sweep.pk)
    if sweep.status != Sweep.Status.CANCELLED:
        raise ValidationError("Only a cancelled sweep can be resumed.")
    units = SweepUnit.objects.filter(sweep=sweep)
    running = units.filter(status=SweepUnit.Status.RUNNING)
    stopped_at = sweep.finished_at or timezone.now()
    if running.exists():
        if (timezone.now() - stopped_at).total_seconds() < RESUME_STALE_UNIT_SECONDS:
            raise ValidationError(
                f"{running.count()} unit(s) of the cancelled run are still finishing; resume in a moment."
            )
        running.update(status=SweepUnit.Status.PENDING, claimed_by="")
    total = units.count()
    done = units.filter(status=SweepUnit.Status.DONE).count()
    job = job_create(
        kind="sweep",
        created_by=created_by,
        message=f"{sweep.study.name}: resumed, {done} of {total} units done" if total else "Resumed",
    )
    if total:
        Job.objects.filter(pk=job.pk).update(progress=done / (total + 1))
        Sweep.objects.filter(pk=sweep.pk).update(
            status=Sweep.Status.RUNNING, job=job, finished_at=None, error=""
        )
        parts = max(1, min(settings.SWEEP_PARALLEL_TASKS, total - done))
        for _ in range(parts):
            job_enqueue(job=job, task=Tasks.SWEEP_RUN_UNITS, kwargs={"sweep_pk": sweep.pk})
    else:
        Sweep.objects.filter(pk=sweep.pk).update(
            status=Sweep.Status.PENDING, job=job, finished_at=None, error=""
        )
        job_enqueue(job=job, task=Tasks.SWEEP_PREPARE, kwargs={"sweep_pk": sweep.pk})
    sweep.refresh_from_db()
    return sweep
