"""Counterfactual-lab runs through the API: admins launch and read them; bad input is a 400 with nothing stored."""

import pytest
from rest_framework.test import APIClient

from reviewapp.models import Job, LabRun
from reviewapp.tasks import lab_run_counterfactual_task
from tests.helpers.studies import FAST_LAB_PARAMETERS as FAST
from tests.helpers.studies import projected_cases

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def api_alice(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def lab_case(lab_study, alice):
    return projected_cases(lab_study, created_by=alice)[0]


def test_an_admin_launches_a_run_and_reads_its_result_and_files(
    api_alice, alice, lab_study, lab_case, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = api_alice.post(
            "/api/lab-runs/",
            {
                "study": lab_study.pk,
                "case": lab_case.pk,
                "method": "dip",
                "target": "1",
                "parameters": FAST["dip"],
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    run = LabRun.objects.get()
    assert response.json()["id"] == run.pk
    assert response.json()["job"] == run.job_id
    assert (response.json()["status"], run.target, run.parameters) == ("pending", 1, FAST["dip"])
    assert len(queued) == 1  # the job's task, sent on commit

    lab_run_counterfactual_task(run.job_id, run_pk=run.pk)
    body = api_alice.get(f"/api/lab-runs/{run.pk}/").json()
    assert body["status"] == "succeeded"
    assert body["prob_counterfactual"] == pytest.approx(LabRun.objects.get().prob_counterfactual)
    assert {"counterfactual", "difference", "path", "stack"} <= set(body["files"])
    api_alice.force_login(alice)  # the files are served to logged-in sessions, as the pages' images
    image = api_alice.get(body["files"]["counterfactual"])
    assert image.status_code == 200
    assert (
        b"".join(image.streaming_content if image.streaming else [image.content])[:8] == b"\x89PNG\r\n\x1a\n"
    )

    listed = api_alice.get("/api/lab-runs/", {"case": lab_case.pk, "method": "dip"}).json()
    assert [r["id"] for r in listed["results"]] == [run.pk]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "magic"}, "method"),
        ({"parameters": {"no_such_option": 1}}, "no_such_option"),
        ({"parameters": {"counterfactual_steps": "many"}}, "counterfactual_steps"),
        ({"target": "maybe"}, "maybe"),
    ],
)
def test_bad_requests_are_a_400_naming_the_problem_and_store_nothing(
    api_alice, lab_study, lab_case, change, field
):
    request = {"study": lab_study.pk, "case": lab_case.pk, "method": "dip", **change}
    response = api_alice.post("/api/lab-runs/", request, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert not LabRun.objects.exists() and not Job.objects.filter(kind="counterfactual").exists()


def test_a_case_of_another_study_is_refused(api_alice, lab_study, lab_case, alice):
    from tests.factories import StudyFactory

    other = StudyFactory()
    response = api_alice.post(
        "/api/lab-runs/", {"study": other.pk, "case": lab_case.pk, "method": "gradcam"}, format="json"
    )
    assert response.status_code == 400
    assert not LabRun.objects.exists()


def test_reviewers_can_neither_launch_nor_list_runs(bob, lab_study, lab_case):
    client = APIClient()
    client.force_authenticate(bob)
    request = {"study": lab_study.pk, "case": lab_case.pk, "method": "gradcam"}
    assert client.post("/api/lab-runs/", request, format="json").status_code == 403
    assert client.get("/api/lab-runs/").status_code == 403
    assert not LabRun.objects.exists()
