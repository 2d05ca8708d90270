"""The sweep config stored at launch is the one every part of the sweep runs with, and each review set is
curated with its own parameters."""

from __future__ import annotations

import pytest

from explain_engine.sweep import SweepConfig
from reviewapp.bridge import sweeps as sweep_bridge
from reviewapp.models import Job, Projection, ReviewItem, ReviewSet, Sweep
from reviewapp.services.cases import case_import_files
from reviewapp.services.review_sets import review_set_create
from reviewapp.services.sweeps import sweep_launch
from reviewapp.tasks import (
    projection_run_task,
    review_set_render_task,
    sweep_prepare_task,
    sweep_run_units_task,
)
from tests.factories import ProjectionFactory, StudyFactory
from tests.helpers.studies import tiny_case_files

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_a_worker_with_other_settings_runs_the_stored_sweep_config(settings, monkeypatch, alice):
    settings.SWEEP_IMAGE_CHUNK, settings.SWEEP_DIM_CHUNK = 2, 128
    study = StudyFactory(ranges_path="studies/1/ranges.pt")
    ProjectionFactory.create_batch(2, case__study=study)
    sweep = sweep_launch(study=study, created_by=alice, mode="screening", screening_top_k=7)
    stored = Sweep.objects.get(pk=sweep.pk).config
    assert stored == {**stored, "mode": "screening", "screening_top_k": 7, "image_chunk": 2, "dim_chunk": 128}

    # Another worker, another unit size: it still rebuilds the sweep's own config.
    settings.SWEEP_IMAGE_CHUNK, settings.SWEEP_DIM_CHUNK = 8, 1024
    monkeypatch.setattr(sweep_bridge, "load_study_models", lambda study: None)
    monkeypatch.setattr(sweep_bridge, "load_styles", lambda projections: None)
    sweep = Sweep.objects.get(pk=sweep.pk)
    runner = sweep_bridge.SweepRunner(sweep, [])
    assert runner.config == SweepConfig(**stored)
    assert runner.engine_config == stored
    assert sweep_bridge.sweep_config(sweep) == SweepConfig(**stored)


def test_a_sweep_without_a_stored_config_gets_one_from_its_fields(settings):
    settings.SWEEP_IMAGE_CHUNK, settings.SWEEP_DIM_CHUNK = 3, 64
    sweep = Sweep(mode="exact", screening_top_k=9, config={})
    config = sweep_bridge.sweep_config(sweep)
    assert (config.mode, config.screening_top_k, config.image_chunk, config.dim_chunk) == ("exact", 9, 3, 64)


def _run_projections():
    for job in Job.objects.filter(kind="projection", status=Job.Status.PENDING):
        pks = list(Projection.objects.filter(job=job).values_list("pk", flat=True))
        projection_run_task(job.pk, projection_pks=pks)


def test_each_review_set_is_curated_with_its_own_parameters(tiny_study, alice, settings):
    settings.SWEEP_GALLERIES_AT_FINISH = 0
    case_import_files(study=tiny_study, files=tiny_case_files(4), created_by=alice)
    _run_projections()
    sweep = sweep_launch(study=tiny_study, created_by=alice, delta=0.02)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep_run_units_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.SUCCEEDED, sweep.error
    strongest = list(sweep.dimension_effects.order_by("rank")[:1])
    no_filters = {"min_confidence": 0.0, "min_psnr": None, "max_prob_diff": None}

    def make(name, **curation) -> ReviewSet:
        review_set = review_set_create(sweep=sweep, name=name, dimensions=strongest, **curation)
        review_set_render_task(review_set.job_id, review_set_pk=review_set.pk)
        review_set.refresh_from_db()
        assert review_set.status == ReviewSet.Status.READY, review_set.curation
        return review_set

    one = make("One per dimension", images_per_dimension=1, **no_filters)
    three = make("Three per dimension", images_per_dimension=3, **no_filters)
    strict = make("Strict PSNR", images_per_dimension=3, **{**no_filters, "min_psnr": 1000.0})

    assert ReviewItem.objects.filter(review_set=one).count() == 1
    assert ReviewItem.objects.filter(review_set=three).count() == 3
    assert three.curation["filters"]["images_per_dimension"] == 3
    assert three.curation["filters"]["min_confidence"] == 0.0 and three.curation["eligible_images"] == 4
    assert ReviewItem.objects.filter(review_set=strict).count() == 0
    assert strict.curation["dropped"]["psnr"] == 4 and strict.curation["eligible_images"] == 0
    assert (strict.min_psnr, strict.images_per_dimension) == (1000.0, 3)
    # Parameters left out take the engine's curation defaults.
    default = review_set_create(sweep=sweep, name="Defaults", dimensions=strongest)
    assert (default.images_per_dimension, default.min_confidence, default.min_psnr) == (5, 0.9, 25.0)
