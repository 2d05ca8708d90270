"""The lab pages: launch a run from the form, follow it, compare runs; only admins, bad input refused."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from reviewapp.models import Job, LabRun
from reviewapp.tasks import lab_run_counterfactual_task
from tests.factories import CaseFactory, LabRunFactory
from tests.helpers.studies import FAST_LAB_PARAMETERS, projected_cases

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def lab_case(lab_study, alice):
    return projected_cases(lab_study, created_by=alice)[0]


def launch(client, study, **fields):
    return client.post(reverse("lab", args=[study.pk]), fields)


def test_the_study_page_links_to_the_lab(alice_client, lab_study):
    page = alice_client.get(reverse("study", args=[lab_study.pk])).content.decode()
    assert reverse("lab", args=[lab_study.pk]) in page


def test_the_lab_form_offers_every_method_with_the_engine_defaults(alice_client, lab_study, lab_case):
    response = alice_client.get(reverse("lab", args=[lab_study.pk]))

    assert response.status_code == 200
    form = response.context["form"]
    assert [value for value, _ in form.fields["method"].choices] == list(LabRun.Method.values)
    assert form.fields["gci-steps"].initial == 100
    assert form.fields["dip-loss_estimator_weight"].initial == 0.1
    assert form.fields["gci-projection_steps"].initial == lab_study.projection_steps
    assert lab_case.original_filename in response.content.decode()


def test_an_admin_launches_a_run_and_sees_its_result(alice_client, lab_study, lab_case):
    response = launch(
        alice_client,
        lab_study,
        case=lab_case.pk,
        method="gci",
        target="",
        **{"gci-steps": 4, "gci-bisection_steps": 1, "gci-anchor": "query"},
        options_json=json.dumps({"max_bracket_steps": 1, "path_frames": 3}),
    )

    run = LabRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("lab-run", args=[run.pk])
    assert run.parameters["steps"] == 4 and run.parameters["path_frames"] == 3
    assert run.job.kind == "counterfactual" and run.job.status == Job.Status.PENDING
    page = alice_client.get(response.url).content.decode()
    assert f'data-job-progress="{reverse("job-progress", args=[run.job_id])}"' in page

    lab_run_counterfactual_task(run.job_id, run_pk=run.pk)

    run.refresh_from_db()
    page = alice_client.get(response.url).content.decode()
    assert run.status == LabRun.Status.SUCCEEDED
    for field in (run.counterfactual_image, run.difference_image, run.path_gif, run.start_image):
        assert reverse("media", args=[field.name]) in page
    assert "COUT" in page and "data-job-progress" not in page
    assert alice_client.get(reverse("media", args=[run.path_gif.name])).status_code == 200


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": "magic"}, "Select a valid choice"),
        ({"method": "gci", "gci-steps": 0}, "greater than or equal to 1"),
        ({"method": "gci", "gci-steps": 10**30}, "less than or equal to 10000"),
        (
            {"method": "dip", "options_json": '{"channels": [1000000, 1000000]}'},
            "channels[0] must be at most 512",
        ),
        ({"method": "gci", "options_json": '{"lr": NaN}'}, "Not valid JSON"),
        ({"method": "gci", "options_json": "[" * 5000 + "]" * 5000}, "nested more than 32 levels"),
        ({"method": "gci", "options_json": "{steps: 3}"}, "Not valid JSON"),
        ({"method": "gci", "options_json": '{"stepz": 3}'}, "Unknown option(s) for gci: stepz"),
        ({"method": "dip", "options_json": '{"channels": "wide"}'}, "channels must be a list of int"),
        ({"method": "gradcam", "target": "2"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_is_stored(
    alice_client, lab_study, lab_case, fields, message
):
    response = launch(alice_client, lab_study, case=lab_case.pk, **fields)

    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not LabRun.objects.exists() and not Job.objects.filter(kind="counterfactual").exists()


def test_a_case_of_another_study_is_refused(alice_client, lab_study, lab_case):
    stranger = CaseFactory()

    response = launch(alice_client, lab_study, case=stranger.pk, method="gradcam")

    assert response.status_code == 400
    assert not LabRun.objects.exists()


def test_reviewers_cannot_open_or_use_the_lab(bob_client, lab_study, lab_case):
    run = LabRunFactory(study=lab_study, case=lab_case)
    assert bob_client.get(reverse("lab", args=[lab_study.pk])).status_code == 403
    assert launch(bob_client, lab_study, case=lab_case.pk, method="gradcam").status_code == 403
    assert bob_client.get(reverse("lab-run", args=[run.pk])).status_code == 403
    assert bob_client.get(reverse("lab-compare", args=[lab_study.pk]) + f"?run={run.pk}").status_code == 403
    assert bob_client.post(reverse("lab-run-cancel", args=[run.pk])).status_code == 403
    assert LabRun.objects.count() == 1


def test_the_comparison_shows_every_run_of_a_case_side_by_side(alice_client):
    first = LabRunFactory(method="gci")
    second = LabRunFactory(study=first.study, case=first.case, method="dip", prob_counterfactual=0.45)
    elsewhere = LabRunFactory(study=first.study)

    response = alice_client.get(reverse("lab-compare", args=[first.study_id]) + f"?case={first.case_id}")

    assert response.context["runs"] == [first, second]
    page = response.content.decode()
    assert reverse("media", args=[second.path_gif.name]) in page
    assert reverse("media", args=[elsewhere.path_gif.name]) not in page
    p_result = next(row for row in response.context["metrics"] if row.key == "prob_counterfactual")
    assert p_result.values == ["0.320", "0.450"]


def test_chosen_runs_are_compared_and_runs_of_other_studies_are_not(alice_client):
    first = LabRunFactory()
    second = LabRunFactory(study=first.study)
    foreign = LabRunFactory()

    url = reverse("lab-compare", args=[first.study_id])
    response = alice_client.get(f"{url}?run={first.pk}&run={second.pk}&run={foreign.pk}")

    assert response.context["runs"] == [first, second]


def test_a_pending_run_can_be_cancelled_from_its_page(alice_client, lab_study, lab_case):
    launch(alice_client, lab_study, case=lab_case.pk, method="gradcam")
    run = LabRun.objects.get()

    response = alice_client.post(reverse("lab-run-cancel", args=[run.pk]))

    run.refresh_from_db()
    assert response.status_code == 302
    assert run.status == LabRun.Status.CANCELLED and run.job.status == Job.Status.CANCELLED


def test_the_lab_page_lists_the_runs_with_their_progress(alice_client, lab_study, lab_case):
    for method in ("gradcam", "dip"):
        launch(
            alice_client,
            lab_study,
            case=lab_case.pk,
            method=method,
            options_json=json.dumps(FAST_LAB_PARAMETERS[method]),
        )
    done = LabRun.objects.get(method="gradcam")
    lab_run_counterfactual_task(done.job_id, run_pk=done.pk)

    page = alice_client.get(reverse("lab", args=[lab_study.pk])).content.decode()

    waiting = LabRun.objects.get(method="dip")
    assert reverse("lab-run", args=[done.pk]) in page and reverse("lab-run", args=[waiting.pk]) in page
    assert f'data-job-progress="{reverse("job-progress", args=[waiting.job_id])}"' in page
    assert "Succeeded" in page
