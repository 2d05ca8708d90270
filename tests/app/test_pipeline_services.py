"""Study -> cases -> projections -> sweep -> review set, each step a service, run in this process."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.bridge.files import media_path
from reviewapp.models import Case, DimensionEffect, Job, Projection, ReviewItem, ReviewSet, Sweep, SweepUnit
from reviewapp.services.cases import case_import_files
from reviewapp.services.review_sets import review_set_create
from reviewapp.services.sweeps import sweep_finalise, sweep_launch
from reviewapp.tasks import (
    projection_run_task,
    review_set_render_task,
    sweep_prepare_task,
    sweep_run_units_task,
)
from tests.helpers.studies import tiny_case_files

pytestmark = pytest.mark.django_db


def run_projection_jobs():
    for job in Job.objects.filter(kind="projection", status=Job.Status.PENDING):
        pks = list(Projection.objects.filter(job=job).values_list("pk", flat=True))
        projection_run_task(job.pk, projection_pks=pks)


def test_a_study_goes_from_cases_to_a_rendered_review_set(tiny_study, alice, settings):
    settings.SWEEP_GALLERIES_AT_FINISH = 2
    report = case_import_files(study=tiny_study, files=tiny_case_files(4), created_by=alice)
    assert len(report.imported) == 4 and not report.skipped

    run_projection_jobs()
    assert Projection.objects.filter(status=Projection.Status.SUCCEEDED).count() == 4
    projection = Projection.objects.first()
    assert np.load(media_path(projection.styles_file.name)).shape == (tiny_study.style_dims,)

    sweep = sweep_launch(study=tiny_study, created_by=alice, delta=0.02)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.RUNNING
    assert SweepUnit.objects.filter(sweep=sweep).count() > 1

    sweep_run_units_task(sweep.job_id, sweep_pk=sweep.pk)

    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.SUCCEEDED, sweep.error
    assert sweep.job.status == Job.Status.SUCCEEDED
    assert DimensionEffect.objects.filter(sweep=sweep).count() == tiny_study.style_dims
    assert sweep.num_selected and sweep.num_selected > 0
    assert sweep.deltas_shape == [4, tiny_study.style_dims, 2]

    strongest = list(sweep.dimension_effects.order_by("rank")[:2])
    review_set = review_set_create(
        sweep=sweep,
        name="First look",
        dimensions=strongest,
        images_per_dimension=2,
        min_confidence=0.0,
        min_psnr=None,
        max_prob_diff=None,
        created_by=alice,
    )
    review_set_render_task(review_set.job_id, review_set_pk=review_set.pk)
    review_set.refresh_from_db()
    assert review_set.status == ReviewSet.Status.READY, review_set.curation
    item = ReviewItem.objects.filter(review_set=review_set).first()
    assert item is not None
    assert media_path(item.counterfactual.flicker_gif.name).exists()
    assert Case.objects.count() == 4


def test_a_sweep_can_select_its_k_strongest_dimensions_instead_of_a_threshold(tiny_study, alice, settings):
    from reviewapp.bridge import sweeps as sweep_bridge

    settings.SWEEP_GALLERIES_AT_FINISH = 0
    case_import_files(study=tiny_study, files=tiny_case_files(3), created_by=alice)
    run_projection_jobs()
    # delta 0.99: no single clamp moves a score that far, so the threshold alone selects nothing.
    sweep = sweep_launch(study=tiny_study, created_by=alice, delta=0.99, strongest_k=3)
    assert sweep.selection_rule == "the 3 strongest by mean |change|"
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep_run_units_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.SUCCEEDED, sweep.error
    assert sweep.num_selected == 3
    selected = list(
        sweep.dimension_effects.filter(selected=True).order_by("rank").values_list("rank", flat=True)
    )
    assert selected == [1, 2, 3]

    # Float32 deltas on the CPU: no numeric tolerance; every dimension has an interval and a frequency.
    assert (sweep.precision, sweep.tolerance) == ("float32", 0.0)
    for row in sweep.dimension_effects.all():
        assert row.effect_lower - 1e-6 <= row.effect <= row.effect_upper + 1e-6 and 0 <= row.frequency <= 1
    assert sweep.dimension_effects.get(rank=1).frequency > 0.5

    sweep.strongest_k = None
    assert not sweep_bridge.sweep_selection(sweep).selected
    assert sweep.selection_rule == "mean |change| > 0.99"
    sweep.aggregate = Sweep.Aggregate.FRACTION
    assert sweep.selection_rule == "share of images with |change| ≥ 0.99 > 0.1"
    sweep.aggregate = Sweep.Aggregate.MEAN_ABS
    # Had a unit run in bf16 on a GPU, a dimension within the bf16 tolerance of delta would be borderline.
    strongest = sweep.dimension_effects.get(rank=1)
    sweep.delta = strongest.effect + 0.01
    (media_path(sweep.deltas_dir) / "precision-bf16").touch()
    assert sweep_bridge.sweep_precision_facts(sweep) == {"precision": "bf16", "tolerance": 0.027}
    borderline = {e.dim: e.borderline_reason for e in sweep_bridge.sweep_selection(sweep).borderline}
    assert "numeric tolerance 0.027" in borderline[strongest.dim]
    sweep.rule = Sweep.Rule.INTERVAL
    assert sweep.selection_rule.startswith("lower bound of the 90% interval of mean |change| >")


def test_a_screening_sweep_makes_its_strongest_dimensions_exact_before_ranking(tiny_study, alice, settings):
    settings.SWEEP_GALLERIES_AT_FINISH = 0
    settings.SWEEP_SCREENING_REFINE = 5
    case_import_files(study=tiny_study, files=tiny_case_files(3), created_by=alice)
    run_projection_jobs()
    sweep = sweep_launch(study=tiny_study, created_by=alice, delta=0.02, mode="screening", screening_top_k=2)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep_run_units_task(sweep.job_id, sweep_pk=sweep.pk)

    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.SUCCEEDED, sweep.error
    folder = media_path(sweep.deltas_dir)
    exact_mask = np.load(folder / "exact_mask.npy")
    strongest = list(sweep.dimension_effects.order_by("rank").values_list("dim", flat=True)[:5])
    assert exact_mask[:, strongest].all()  # every image's delta of the five strongest is exact
    assert exact_mask.sum() < exact_mask.size  # the others keep their estimates
    # 3 images x 2 dims x 2 ends + 3 base passes per unit's screening, then the refinement's exact entries
    assert sweep.perturbations > 3 * (2 * 2 + 1)
    assert 0 < sweep.refined_perturbations < sweep.perturbations

    # A worker lost after refining, before recording it: the rerun of the last step records the refinement
    # once (from the sweep's folder), and a further rerun adds nothing.
    total, refined = sweep.perturbations, sweep.refined_perturbations
    Sweep.objects.filter(pk=sweep.pk).update(perturbations=total - refined, refined_perturbations=0)
    for _ in range(2):
        sweep_finalise(sweep=Sweep.objects.get(pk=sweep.pk), job=sweep.job)
        sweep.refresh_from_db()
        assert (sweep.perturbations, sweep.refined_perturbations) == (total, refined)
