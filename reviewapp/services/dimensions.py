"""Dimension galleries: a dimension's strongest counterfactuals, its mean difference map and distribution."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from reviewapp.bridge.params import curation_default
from reviewapp.bridge.rendering import render_counterfactuals, render_dimension_summary
from reviewapp.bridge.sweeps import rank_images
from reviewapp.models import Counterfactual, DimensionEffect, Job, Projection
from reviewapp.selectors.sweeps import sweep_projections
from reviewapp.services.jobs import Tasks, job_create, job_enqueue

#: Images whose difference maps are averaged into a dimension's mean difference map.
MEAN_DIFFERENCE_IMAGES = 32
#: Images in a dimension's gallery: as many as a review set takes per dimension by default.
GALLERY_IMAGES = curation_default("images_per_dimension")


def dimension_top_images(*, dimension: DimensionEffect, count: int) -> list[int]:
    """Indices (rows of the sweep) of the images with the largest change in the dimension's direction."""
    return rank_images(dimension.sweep, dimension.dim, dimension.direction, count=count)


def dimension_render_gallery(*, dimension: DimensionEffect) -> list[Counterfactual]:
    """Render the counterfactuals of the dimension's top images (those not rendered yet) and its summary."""
    sweep = dimension.sweep
    projections = sweep_projections(sweep)
    top = dimension_top_images(dimension=dimension, count=max(GALLERY_IMAGES, MEAN_DIFFERENCE_IMAGES))
    gallery = counterfactual_render(
        dimension=dimension,
        projections=[projections[i] for i in top[:GALLERY_IMAGES]],
        direction=dimension.direction,
    )
    fields = render_dimension_summary(sweep, dimension, [projections[i] for i in top])
    DimensionEffect.objects.filter(pk=dimension.pk).update(**fields)
    for name, value in fields.items():
        setattr(dimension, name, value)
    return gallery


def counterfactual_render(
    *, dimension: DimensionEffect, projections: Sequence[Projection], direction: str
) -> list[Counterfactual]:
    """The counterfactuals of ``projections`` for one dimension and direction, rendering the missing ones."""
    existing = {
        cf.projection_id: cf
        for cf in Counterfactual.objects.filter(
            dimension=dimension, direction=direction, projection__in=[p.pk for p in projections]
        )
    }
    missing = [p for p in projections if p.pk not in existing]
    if missing:
        rows = render_counterfactuals(dimension.sweep, dimension, missing, direction=direction)
        existing.update(counterfactual_record(rows=rows))
    return [existing[p.pk] for p in projections]


@transaction.atomic
def counterfactual_record(*, rows: Sequence[dict]) -> dict[int, Counterfactual]:
    """Rows for rendered counterfactuals (files already written); an existing row is updated."""
    recorded = {}
    for fields in rows:
        counterfactual, _ = Counterfactual.objects.update_or_create(
            projection=fields["projection"],
            dimension=fields["dimension"],
            direction=fields["direction"],
            defaults={k: v for k, v in fields.items() if k not in ("projection", "dimension", "direction")},
        )
        recorded[counterfactual.projection_id] = counterfactual
    return recorded


@transaction.atomic
def dimension_queue_gallery(*, dimension: DimensionEffect, created_by: AbstractBaseUser | None = None) -> Job:
    """Queue the rendering of one dimension's gallery (for dimensions not rendered with the sweep)."""
    job = job_create(kind="gallery", created_by=created_by, message=f"Dimension {dimension.dim}")
    DimensionEffect.objects.filter(pk=dimension.pk).update(gallery_job=job)
    dimension.gallery_job = job
    job_enqueue(job=job, task=Tasks.DIMENSION_GALLERY, kwargs={"dimension_pk": dimension.pk})
    return job
