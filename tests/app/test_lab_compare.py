"""The lab's compare page lines runs up by kind of image, hides edit figures for saliency maps, and a run's
most changed style dimensions come largest first."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reviewapp.models import LabRun
from reviewapp.selectors.lab import COUNTERFACTUAL_ONLY, lab_changed_styles, lab_metric_rows
from tests.factories import LabRunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def saliency_run(**fields) -> LabRun:
    return LabRunFactory(
        method=LabRun.Method.GRADCAM,
        start_image=None,
        difference_image=None,
        path_gif=None,
        heatmap_image=LabRunFactory.counterfactual_image.function(None),
        metrics={"changed_fraction": 0.0, "cout": 0.0, "l1": 0.0, "mass_in_lung": 0.7},
        **fields,
    )


def test_saliency_runs_show_no_edit_figures():
    run = saliency_run()

    keys = [row.key for row in lab_metric_rows(runs=[run])]

    assert "changed_fraction" not in keys and "cout" not in keys and "l1" not in keys
    assert "mass_in_lung" in keys and "prob_original" in keys


def test_beside_a_counterfactual_a_saliency_run_shows_a_dash_for_edit_figures():
    counterfactual = LabRunFactory()
    saliency = saliency_run(study=counterfactual.study, case=counterfactual.case)

    rows = {row.key: row.values for row in lab_metric_rows(runs=[counterfactual, saliency])}

    assert rows["cout"] == ["0.400", "—"]
    assert rows["l1"] == ["0.020", "—"]
    assert rows["mass_in_lung"] == ["—", "0.700"]
    assert {"changed_fraction", "cout"} <= COUNTERFACTUAL_ONLY


def test_the_compare_page_lines_up_each_kind_of_image_in_its_column(alice_client):
    counterfactual = LabRunFactory()
    saliency = saliency_run(study=counterfactual.study, case=counterfactual.case)

    response = alice_client.get(
        reverse("lab-compare", args=[counterfactual.study_id]) + f"?case={counterfactual.case_id}"
    )
    page = response.content.decode()

    assert 'class="lab-compare-grid"' in page
    assert "style=" not in page.split('class="lab-compare-grid"')[1].split("</section>")[0]
    rows = page.split('class="lab-compare-row"')[1:]
    assert len(rows) == 2
    # Every row has the label and five cells, so each kind of image sits in the same column.
    for row in rows:
        row = row.split("</section>")[0]
        assert row.count('role="cell"') == 5
    assert reverse("media", args=[saliency.heatmap_image.name]) in rows[1]


def test_the_most_changed_styles_come_largest_change_first():
    run = LabRunFactory(
        details={
            "top_changed_styles": [
                {"dim": 3, "layer": "b4.conv0", "channel": 3, "change": 0.9, "change_scaled": 1.5},
                {"dim": 8, "layer": "b8.conv1", "channel": 1, "change": -0.1, "change_scaled": -4.0},
                {"dim": 5, "layer": "b4.conv1", "channel": 0, "change": 2.0, "change_scaled": 0.5},
            ]
        }
    )

    styles = lab_changed_styles(run=run)

    assert [s.dim for s in styles] == [8, 3, 5]


def test_the_run_page_lists_the_changed_styles_in_that_order(alice_client):
    run = LabRunFactory(
        details={
            "top_changed_styles": [
                {"dim": 31, "layer": "b4.conv0", "channel": 3, "change": 0.9, "change_scaled": 1.5},
                {"dim": 47, "layer": "b8.conv1", "channel": 1, "change": -0.1, "change_scaled": -4.0},
            ]
        }
    )

    page = alice_client.get(reverse("lab-run", args=[run.pk])).content.decode()
    table = page.split('class="table changed-styles"')[1]

    assert table.index("<td>47</td>") < table.index("<td>31</td>")
