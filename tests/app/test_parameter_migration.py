"""Migration 0008 renames the sweep and review-set parameters and moves the curation filters from the sweep to
its review sets, keeping the data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("reviewapp", "0007_sweep_select_top")]
AFTER = [("reviewapp", "0008_parameter_names_and_review_set_curation")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_rename_keeps_the_sweeps_and_review_sets_values():
    try:
        old = _migrate(BEFORE)
        Study = old.get_model("reviewapp", "Study")
        Sweep = old.get_model("reviewapp", "Sweep")
        ReviewSet = old.get_model("reviewapp", "ReviewSet")
        study = Study.objects.create(name="Old study", target_label="Pneumonia")
        sweep = Sweep.objects.create(
            study=study,
            aggregation="fraction",
            delta=0.25,
            select_top=7,
            top_k=4,
            min_confidence=0.6,
            min_psnr=None,
            min_ssim=0.5,
            max_perceptual=0.2,
            max_prob_diff=0.05,
        )
        ReviewSet.objects.create(study=study, sweep=sweep, name="Old set", per_dimension=3)

        new = _migrate(AFTER)
        Sweep = new.get_model("reviewapp", "Sweep")
        ReviewSet = new.get_model("reviewapp", "ReviewSet")
        sweep = Sweep.objects.get(pk=sweep.pk)
        assert (sweep.aggregate, sweep.delta, sweep.strongest_k) == ("fraction", 0.25, 7)
        review_set = ReviewSet.objects.get(name="Old set")
        assert review_set.images_per_dimension == 3
        assert (
            review_set.min_confidence,
            review_set.min_psnr,
            review_set.min_ssim,
            review_set.max_perceptual,
            review_set.max_prob_diff,
        ) == (0.6, None, 0.5, 0.2, 0.05)
        # The new names create rows on the migrated schema.
        Sweep.objects.create(study=sweep.study, aggregate="mean_raise", strongest_k=3)
        ReviewSet.objects.create(
            study=sweep.study, sweep=sweep, name="New set", images_per_dimension=2, min_confidence=0.8
        )
        assert {field.name for field in Sweep._meta.get_fields()}.isdisjoint(
            {"aggregation", "select_top", "top_k", "min_confidence", "min_psnr", "max_prob_diff"}
        )

        # And back: the sweep gets its review set's filters again.
        old = _migrate(BEFORE)
        Sweep = old.get_model("reviewapp", "Sweep")
        sweep = Sweep.objects.get(pk=sweep.pk)
        assert (sweep.aggregation, sweep.select_top, sweep.min_confidence) == ("fraction", 7, 0.8)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
