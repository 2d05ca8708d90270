"""The admin side's pages render what they promise; reviewers get 403."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reviewapp.models import Job, ReviewAssignment, Sweep
from reviewapp.services.jobs import job_create, job_progress, job_start
from tests.factories import (
    CaseFactory,
    CounterfactualFactory,
    DimensionEffectFactory,
    ProjectionFactory,
    ReviewItemFactory,
    StudyFactory,
    SweepFactory,
)

pytestmark = pytest.mark.django_db


def test_the_dashboard_lists_studies_for_admins(alice_client):
    StudyFactory(name="Chest study")

    page = alice_client.get("/").content.decode()

    assert "Chest study" in page and "Register a study" in page


def test_a_study_page_shows_its_cases_with_their_projections(alice_client):
    projection = ProjectionFactory(case__original_filename="p001.png", psnr=31.24)

    response = alice_client.get(reverse("study", args=[projection.case.study_id]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "p001.png" in page and "31.2" in page
    assert reverse("media", args=[projection.case.image.name]) in page


def test_a_running_sweep_shows_a_live_progress_bar_with_a_cancel_button(alice_client):
    job = job_create(kind="sweep")
    job_start(job=job)
    job_progress(job=job, done=1, total=4, message="1 of 3 units")
    sweep = SweepFactory(status=Sweep.Status.RUNNING, job=job)

    page = alice_client.get(reverse("sweep", args=[sweep.pk])).content.decode()

    assert f'data-job-progress="/jobs/{job.pk}/progress"' in page
    assert "data-reload-on-finish" in page
    assert "25%" in page and "1 of 3 units" in page
    assert "Cancel sweep" in page


def test_the_dimension_table_puts_selected_dimensions_on_top_and_sorts(alice_client):
    sweep = SweepFactory()
    DimensionEffectFactory(sweep=sweep, dim=7, rank=1, effect=0.9, selected=False)
    DimensionEffectFactory(sweep=sweep, dim=3, rank=2, effect=0.4, selected=True)
    DimensionEffectFactory(sweep=sweep, dim=5, rank=3, effect=0.2, selected=False)

    page = alice_client.get(reverse("sweep", args=[sweep.pk]) + "?sort=dim").content.decode()

    positions = [page.index(f'/dimensions/{dim}/"') for dim in (3, 5, 7)]
    assert positions == sorted(positions)


def test_the_dimension_table_shows_intervals_frequencies_and_lists_borderline_dimensions_apart(alice_client):
    sweep = SweepFactory(
        status=Sweep.Status.SUCCEEDED, rule=Sweep.Rule.INTERVAL, tolerance=0.027, precision="bf16"
    )
    DimensionEffectFactory(
        sweep=sweep,
        dim=3,
        rank=1,
        effect=0.45,
        selected=True,
        effect_lower=0.41,
        effect_upper=0.49,
        frequency=1.0,
    )
    DimensionEffectFactory(
        sweep=sweep,
        dim=5,
        rank=2,
        effect=0.31,
        selected=False,
        effect_lower=0.26,
        effect_upper=0.36,
        frequency=0.62,
        borderline=True,
        borderline_reason="its 90% interval [0.260, 0.360] reaches the threshold 0.3",
    )
    DimensionEffectFactory(sweep=sweep, dim=7, rank=3, effect=0.05, selected=False)

    page = alice_client.get(reverse("sweep", args=[sweep.pk])).content.decode()

    assert "[0.410, 0.490]" in page and "[0.260, 0.360]" in page and "0.62" in page
    assert "lower bound of the 90% interval of mean |change| &gt; 0.3" in page
    assert "numeric tolerance 0.027" in page and "bf16" in page
    borderline = page.index("Borderline dimensions (1)")
    assert page.index("reaches the threshold 0.3", borderline) < page.index('id="dimensions"')
    # Selected first, then borderline, then the rest; a dimension without an interval shows a dash.
    positions = [page.index(f'/dimensions/{dim}/"', page.index('id="dimensions"')) for dim in (3, 5, 7)]
    assert positions == sorted(positions)
    assert 'class="borderline"' in page


def test_a_dimension_page_shows_its_gallery_with_probabilities(alice_client):
    counterfactual = CounterfactualFactory(prob_perturbed=0.81)
    dimension = counterfactual.dimension

    page = alice_client.get(
        reverse("sweep-dimension", args=[dimension.sweep_id, dimension.dim])
    ).content.decode()

    assert "p = 0.81" in page
    assert reverse("media", args=[counterfactual.flicker_gif.name]) in page


def test_an_unrendered_dimension_offers_to_render_it(alice_client):
    dimension = DimensionEffectFactory()

    page = alice_client.get(
        reverse("sweep-dimension", args=[dimension.sweep_id, dimension.dim])
    ).content.decode()

    assert "Render the top" in page


def test_a_review_set_page_shows_each_item_stack_and_assigns_reviewers(alice_client, bob, charlie):
    item = ReviewItemFactory()
    review_set = item.review_set

    page = alice_client.get(reverse("curation-review-set", args=[review_set.pk])).content.decode()
    assert "Item 1" in page and "Perturbed" in page and "Reconstruction" in page

    response = alice_client.post(
        reverse("review-set-assign", args=[review_set.pk]), {"readers": [bob.pk, charlie.pk]}
    )
    assert response.status_code == 302
    assert set(ReviewAssignment.objects.values_list("reader__username", flat=True)) == {"bob", "charlie"}


def test_the_launch_form_offers_the_projected_held_out_cases_with_the_papers_defaults(alice_client):
    projection = ProjectionFactory(case__original_filename="held.png")
    CaseFactory(study=projection.case.study, original_filename="unprojected.png")

    page = alice_client.get(reverse("sweep-new", args=[projection.case.study_id])).content.decode()

    assert "held.png" in page and "unprojected.png" not in page
    assert 'value="0.3"' in page


def test_the_review_set_form_preselects_the_selected_dimensions(alice_client):
    sweep = SweepFactory()
    DimensionEffectFactory(sweep=sweep, dim=11, selected=True)

    page = alice_client.get(reverse("review-set-new", args=[sweep.pk])).content.decode()

    assert "11 · b8.conv1" in page and "checked" in page
    # The curation filters are the review set's, with the paper's defaults.
    assert 'value="5"' in page and 'value="0.9"' in page and 'value="25.0"' in page


@pytest.mark.parametrize("name", ["study-new"])
def test_reviewers_get_403(bob_client, name):
    assert bob_client.get(reverse(name)).status_code == 403


def test_reviewers_cannot_open_study_or_sweep_pages(bob_client):
    sweep = SweepFactory()
    assert bob_client.get(reverse("study", args=[sweep.study_id])).status_code == 403
    assert bob_client.get(reverse("sweep", args=[sweep.pk])).status_code == 403
    assert bob_client.get(reverse("review-set-new", args=[sweep.pk])).status_code == 403


def test_every_model_has_a_read_mostly_django_admin_page(alice_client):
    ReviewItemFactory()
    from django.contrib import admin

    from reviewapp import models

    for name in models.__all__:
        model = getattr(models, name)
        if not isinstance(model, type):
            continue
        if not hasattr(model, "_meta"):
            continue
        assert model in admin.site._registry, name
        url = reverse(f"admin:reviewapp_{model._meta.model_name}_changelist")
        assert alice_client.get(url).status_code == 200, name
        assert not admin.site._registry[model].has_add_permission(None), name
    assert Job.objects.count() == 0


def test_a_sweep_of_no_case_is_refused(alice_client):
    projection = ProjectionFactory(case__study__ranges_path="studies/1/ranges.pt")
    url = reverse("sweep-new", args=[projection.case.study_id])
    response = alice_client.post(url, {"mode": "exact", "aggregate": "mean_abs", "delta": 0.3, "min_fraction": 0.1,
                                       "screening_top_k": 64})  # fmt: skip

    assert response.status_code == 400
    assert "Choose at least one" in response.content.decode()
