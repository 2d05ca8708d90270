"""The Counterfactual lab: create a run of one method on one case, run it as a job, add it to a review set.

A run is validated whole before anything is stored (the study's case, a known method, a target class,
options the method's config accepts) and queued as a ``counterfactual`` job on the gpu queue. The worker
writes the result's files through ``reviewapp.bridge.lab.lab_files`` and only then points the row at them.
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from reviewapp.bridge import files, models
from reviewapp.bridge.lab import (
    METHODS,
    CounterfactualError,
    case_probability,
    lab_files,
    make_config,
    resolve_target,
)
from reviewapp.inputs import json_problem
from reviewapp.models import Case, Job, LabRun, ReviewItem, ReviewSet, Study
from reviewapp.selectors.projections import latest_projections
from reviewapp.services.jobs import (
    Tasks,
    job_abort_fn,
    job_create,
    job_enqueue,
    job_progress_fn,
    job_request_cancel,
    job_step,
)

Status = LabRun.Status

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _is_a(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind != "bool":
        return False
    return isinstance(value, _TYPES.get(kind, ()))


def _option_problem(name: str, annotation: str, value: Any) -> str | None:
    """Why ``value`` does not fit a config field annotated ``annotation`` ("int", "float | None",
    "tuple[int, ...]", ...), or None when it fits."""
    kinds = [kind.strip() for kind in annotation.split("|")]
    if value is None:
        return None if "None" in kinds else f"{name} needs a value."
    for kind in kinds:
        if _is_a(value, kind):
            return None
        if kind.startswith("tuple[") and isinstance(value, list | tuple):
            element = kind.removeprefix("tuple[").split(",")[0].strip()
            if all(_is_a(v, element) for v in value):
                return None
    wanted = " or ".join(
        f"a list of {k.removeprefix('tuple[').split(',')[0]}" if k.startswith("tuple[") else k
        for k in kinds
        if k != "None"
    )
    return f"{name} must be {wanted}{' or empty' if 'None' in kinds else ''}; got {value!r}."


def lab_validate_parameters(*, method: str, parameters: dict) -> dict:
    """The method's options as JSON values, checked against its config: known names, the field types, and
    the config's own checks (``make_config``). Raises ``ValidationError`` naming every problem."""
    if not isinstance(parameters, dict) or not all(isinstance(key, str) for key in parameters):
        raise ValidationError("The parameters must be an object of option names and values.")
    problem = json_problem(parameters)
    if problem:
        raise ValidationError(f"Invalid parameters: {problem}.")
    fields = {field.name: field.type for field in dataclasses.fields(METHODS[method].config)}
    unknown = sorted(set(parameters) - set(fields))
    if unknown:
        raise ValidationError(
            f"Unknown option(s) for {method}: {', '.join(unknown)}. Valid: {', '.join(sorted(fields))}."
        )
    problems = [_option_problem(name, fields[name], value) for name, value in parameters.items()]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValidationError(" ".join(problems))
    options = {key: tuple(value) if isinstance(value, list) else value for key, value in parameters.items()}
    try:
        make_config(method, **options)
    except CounterfactualError as error:
        raise ValidationError(f"Invalid options for {method}: {error}") from None
    return {key: list(value) if isinstance(value, tuple) else value for key, value in parameters.items()}


def lab_default_target(*, study: Study, case: Case, method: str = "") -> int:
    """The target a run takes when none is chosen: for a counterfactual, the other class than the classifier's
    decision on the case; for a saliency map, the decision itself (evidence for the class it did not decide
    is mostly absent, and Grad-CAM's map of it comes out empty). The decision is read from the case's
    projection when it has one."""
    projection = latest_projections(cases=[case]).get(case.pk)
    if projection is not None and projection.prob_original is not None:
        probability = projection.prob_original
    else:
        try:
            probability = case_probability(study, case)
        except (models.StudyModelError, OSError, ValueError) as error:
            raise ValidationError(f"The classifier cannot read the case: {error}") from None
    decision = 1 if probability >= 0.5 else 0
    return decision if method in LabRun.SALIENCY_METHODS else 1 - decision


@transaction.atomic
def lab_run_create(
    *,
    study: Study,
    case: Case,
    method: str,
    target: int | str | None = None,
    parameters: dict | None = None,
    created_by: AbstractBaseUser | None = None,
) -> LabRun:
    """A pending lab run and its queued ``counterfactual`` job.

    ``target``: 0/1 or a spelling of the study's label ("Pneumonia", "no pneumonia"); None = the other class
    than the classifier's decision on the case, or the decision itself for a saliency map
    (:func:`lab_default_target`). ``parameters``: options of the method's config. Raises
    ``ValidationError`` with a message naming the problem, and stores nothing then.
    """
    if method not in METHODS:
        raise ValidationError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if case.study_id != study.pk:
        raise ValidationError("The case belongs to another study.")
    if METHODS[method].needs_generator:
        generator = files.resolve_path(study.generator_path) if study.generator_path else None
        if generator is None or not generator.is_file():
            raise ValidationError(f"The {method} method needs the study's generator, which is missing.")
    if METHODS[method].needs_autoencoder:
        autoencoder = files.resolve_path(study.autoencoder_path) if study.autoencoder_path else None
        if autoencoder is None or not autoencoder.is_file():
            raise ValidationError(
                f"The {method} method needs an autoencoder checkpoint for this study; "
                + (
                    f"{study.autoencoder_path} is missing."
                    if study.autoencoder_path
                    else "the study names none."
                )
            )
    parameters = lab_validate_parameters(method=method, parameters=dict(parameters or {}))
    if "styles" in METHODS[method].uses:
        # A case without a projection is projected by the method, with the study's projection length.
        parameters.setdefault("projection_steps", study.projection_steps)
    if target is None or target == "":
        target = lab_default_target(study=study, case=case, method=method)
    else:
        try:
            target = resolve_target(target, study.target_label)
        except CounterfactualError as error:
            raise ValidationError(str(error)) from None
    run = LabRun.objects.create(
        study=study,
        case=case,
        method=method,
        target=target,
        parameters=parameters,
        created_by=created_by,
    )
    job = job_create(
        kind="counterfactual",
        created_by=created_by,
        message=f"{study.name}: {run.get_method_display()} on {case.original_filename}",
    )
    LabRun.objects.filter(pk=run.pk).update(job=job)
    run.job = job
    job_enqueue(job=job, task=Tasks.LAB_RUN, kwargs={"run_pk": run.pk})
    return run


def lab_run_execute(*, run: LabRun, job: Job) -> str:
    """The worker's side: run the method with the job's progress and abort, then record the result.

    A run that already finished (a redelivered message) is left as it is.
    """
    claimed = LabRun.objects.filter(pk=run.pk, status__in=[Status.PENDING, Status.RUNNING]).update(
        status=Status.RUNNING, started_at=timezone.now(), error=""
    )
    if not claimed:
        return f"The run is {run.status} already."
    projection = None
    if "styles" in METHODS[run.method].uses:
        projection = latest_projections(cases=[run.case]).get(run.case_id)
    with job_step(
        failed=lambda error: lab_run_mark_finished(run=run, status=Status.FAILED, error=error),
        cancelled=lambda: lab_run_mark_finished(run=run, status=Status.CANCELLED, error="Cancelled."),
    ):
        fields = lab_files(
            run, styles_projection=projection, progress_fn=job_progress_fn(job), abort_fn=job_abort_fn(job)
        )
    if not lab_run_record(run=run, fields=fields):
        shutil.rmtree(files.media_path(fields["folder"]), ignore_errors=True)
        return "The run was stopped before its result was recorded."
    run.refresh_from_db()
    if run.is_saliency:
        return f"{run.get_method_display()} map in {run.seconds:.1f} s."
    outcome = "flipped" if run.flipped else "not flipped"
    return (
        f"p({run.study.target_label.lower()}) {run.prob_original:.2f} -> {run.prob_counterfactual:.2f}, "
        f"{outcome}, {run.seconds:.1f} s."
    )


@transaction.atomic
def lab_run_record(*, run: LabRun, fields: dict[str, Any]) -> bool:
    """Point a running run at its written files and figures; False when it is no longer running."""
    updated = LabRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        **fields, status=Status.SUCCEEDED, error="", finished_at=timezone.now()
    )
    return bool(updated)


@transaction.atomic
def lab_run_mark_finished(*, run: LabRun, status: str, error: str) -> None:
    LabRun.objects.filter(pk=run.pk, status__in=[Status.PENDING, Status.RUNNING]).update(
        status=status, error=error, finished_at=timezone.now()
    )


@transaction.atomic
def lab_run_cancel(*, run: LabRun) -> None:
    """Stop a run: a pending one, or one whose worker is gone, now; a running one when the method next checks."""
    if run.job is not None:
        was_running = run.status == Status.RUNNING
        job_request_cancel(job=run.job)
        if run.job.status == Job.Status.CANCELLED:
            error = "Cancelled (its worker was gone)." if was_running else "Cancelled before it started."
            lab_run_mark_finished(run=run, status=Status.CANCELLED, error=error)
    run.refresh_from_db()


@transaction.atomic
def lab_run_add_to_review_set(*, run: LabRun, review_set: ReviewSet) -> ReviewItem:
    """Append a finished lab run to a review set as its next item. A counterfactual is judged by readers
    with the set's protocol; a saliency map (Grad-CAM, integrated gradients) becomes an item of the saliency
    arm, answered with its own questions (the original under the heat map, with an opacity slider).

    Raises ``ValidationError`` (code ``"conflict"`` when the run is in the set already or a reader has
    finalised the set) with a message saying why.
    """
    review_set = ReviewSet.objects.select_for_update().get(pk=review_set.pk)
    if run.study_id != review_set.study_id:
        raise ValidationError("The run and the review set belong to different studies.")
    if run.status != Status.SUCCEEDED:
        raise ValidationError("Only a run that succeeded can be added to a review set.")
    if run.is_saliency and not run.heatmap_image:
        raise ValidationError("The saliency run stored no heat map to show readers.")
    if review_set.status != ReviewSet.Status.READY:
        raise ValidationError(f"The review set {review_set.name!r} is not ready ({review_set.status}).")
    existing = ReviewItem.objects.filter(review_set=review_set, lab_run=run).first()
    if existing is not None:
        raise ValidationError(
            f"This run is item {existing.position} of {review_set.name!r} already.", code="conflict"
        )
    finalised = review_set.assignments.filter(finalised_at__isnull=False).count()
    if finalised:
        raise ValidationError(
            f"{finalised} reader(s) have finalised {review_set.name!r}; a new item would stay unanswered by "
            "them. Add it to another review set.",
            code="conflict",
        )
    last = ReviewItem.objects.filter(review_set=review_set).aggregate(last=Max("position"))["last"] or 0
    return ReviewItem.objects.create(
        review_set=review_set, lab_run=run, position=last + 1, rank_in_dimension=None
    )
