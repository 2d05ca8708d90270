"""Review sets: curated from a sweep's selected dimensions (papers/003 3.1), rendered, assigned to readers."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from reviewapp.bridge.sweeps import curate_items
from reviewapp.models import DimensionEffect, Job, ReviewAssignment, ReviewItem, ReviewSet, Sweep
from reviewapp.selectors.sweeps import sweep_projections
from reviewapp.selectors.users import user_is_reviewer
from reviewapp.services.dimensions import counterfactual_render
from reviewapp.services.jobs import Tasks, job_create, job_enqueue, job_progress, job_step


@transaction.atomic
def review_set_create(
    *,
    sweep: Sweep,
    name: str,
    dimensions: Sequence[DimensionEffect] | None = None,
    blinded: bool = True,
    randomise_order: bool = True,
    show_probabilities: bool = True,
    confidence_change: bool = False,
    instructions: str = "",
    created_by: AbstractBaseUser | None = None,
    **curation,
) -> ReviewSet:
    """A review set of ``images_per_dimension`` items for each of ``dimensions`` (default: the selected ones);
    the items are curated and their stacks rendered by a job.

    ``curation`` are the set's curation parameters (``ReviewSet.CURATION_FIELDS``: ``images_per_dimension``
    and the confidence and fidelity filters); missing ones take the engine's defaults.
    """
    unknown = set(curation) - set(ReviewSet.CURATION_FIELDS)
    if unknown:
        raise TypeError(f"Unknown curation parameters: {', '.join(sorted(unknown))}")
    if sweep.status != Sweep.Status.SUCCEEDED:
        raise ValidationError("The sweep has not finished.")
    if dimensions is None:
        dimensions = list(sweep.dimension_effects.filter(selected=True))
    if not dimensions:
        raise ValidationError("Choose at least one dimension; this sweep selected none.")
    if any(d.sweep_id != sweep.pk for d in dimensions):
        raise ValidationError("Every dimension must come from the sweep.")
    if ReviewSet.objects.filter(study=sweep.study, name=name).exists():
        raise ValidationError(f"The study has a review set named {name!r} already.")
    review_set = ReviewSet(
        study=sweep.study,
        sweep=sweep,
        name=name,
        blinded=blinded,
        randomise_order=randomise_order,
        show_probabilities=show_probabilities,
        confidence_change=confidence_change,
        instructions=instructions,
        created_by=created_by,
        curation={"dimensions": sorted(d.dim for d in dimensions)},
        **curation,
    )
    review_set.full_clean(exclude=["study", "sweep", "job"])
    review_set.save()
    job = job_create(
        kind="review set", created_by=created_by, message=f"{name}: {len(dimensions)} dimension(s)"
    )
    review_set.job = job
    review_set.save(update_fields=["job"])
    job_enqueue(job=job, task=Tasks.REVIEW_SET_RENDER, kwargs={"review_set_pk": review_set.pk})
    return review_set


def review_set_render(*, review_set: ReviewSet, job: Job) -> str:
    """Curate the items and render every item's stack; the set is ready when all are stored."""
    if review_set.status == ReviewSet.Status.READY:
        return "Already rendered."
    sweep = review_set.sweep
    dimensions = list(
        sweep.dimension_effects.filter(dim__in=review_set.curation.get("dimensions", [])).order_by("rank")
    )
    projections = sweep_projections(sweep)
    with job_step(failed=lambda error: review_set_mark_failed(review_set=review_set, error=error)):
        items, summary = curate_items(review_set, dimensions, projections)
        by_dim = {d.dim: d for d in dimensions}
        rendered = []
        for index, dimension in enumerate(dimensions):
            job_progress(job=job, done=index, total=len(dimensions), message=f"Dimension {dimension.dim}")
            mine = [item for item in items if item.dim == dimension.dim]
            for direction in {item.direction for item in mine}:
                chosen = [item for item in mine if item.direction == direction]
                counterfactuals = counterfactual_render(
                    dimension=by_dim[dimension.dim],
                    projections=[projections[item.image_index] for item in chosen],
                    direction=direction,
                )
                rendered.extend(zip(chosen, counterfactuals, strict=True))
    review_set_record_items(review_set=review_set, rendered=rendered, summary=summary, dimensions=dimensions)
    return f"{len(rendered)} item(s) from {len(dimensions)} dimension(s)."


@transaction.atomic
def review_set_record_items(
    *, review_set: ReviewSet, rendered: list, summary: dict, dimensions: list
) -> None:
    """Items ordered by dimension rank, then by the size of the change within the dimension."""
    rank_of = {d.dim: d.rank for d in dimensions}
    rendered = sorted(rendered, key=lambda pair: (rank_of[pair[0].dim], pair[0].rank_in_dimension))
    ReviewItem.objects.filter(review_set=review_set).delete()
    ReviewItem.objects.bulk_create(
        ReviewItem(
            review_set=review_set,
            counterfactual=counterfactual,
            position=position,
            rank_in_dimension=item.rank_in_dimension,
        )
        for position, (item, counterfactual) in enumerate(rendered, start=1)
    )
    curation = {**review_set.curation, **summary}
    ReviewSet.objects.filter(pk=review_set.pk).update(status=ReviewSet.Status.READY, curation=curation)
    review_set.refresh_from_db()


@transaction.atomic
def review_set_mark_failed(*, review_set: ReviewSet, error: str) -> None:
    curation = {**review_set.curation, "error": error}
    ReviewSet.objects.filter(pk=review_set.pk).update(status=ReviewSet.Status.FAILED, curation=curation)


@transaction.atomic
def review_set_assign(
    *, review_set: ReviewSet, readers: Sequence[AbstractBaseUser], assigned_by: AbstractBaseUser | None = None
) -> list[ReviewAssignment]:
    """Assign reviewers to the set; an assignment that exists is kept (with its order seed)."""
    not_reviewers = [reader.get_username() for reader in readers if not user_is_reviewer(reader)]
    if not_reviewers:
        raise ValidationError(f"Not reviewers: {', '.join(not_reviewers)}.")
    assignments = []
    for reader in readers:
        assignment, _ = ReviewAssignment.objects.get_or_create(
            review_set=review_set, reader=reader, defaults={"assigned_by": assigned_by}
        )
        assignments.append(assignment)
    return assignments


@transaction.atomic
def review_set_unassign(*, review_set: ReviewSet, reader: AbstractBaseUser) -> None:
    """Withdraw a reader who has not answered anything yet."""
    if review_set.items.filter(annotations__reader=reader).exists():
        raise ValidationError(f"{reader.get_username()} has answered items of this set already.")
    ReviewAssignment.objects.filter(review_set=review_set, reader=reader).delete()
