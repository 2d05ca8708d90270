"""Creating a sweep through the API launches it; a study that is not ready gets a clear 400."""

import pytest
from rest_framework.test import APIClient

from reviewapp.models import Sweep
from tests.factories import CaseFactory, ProjectionFactory, StudyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def api_alice(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


def test_an_admin_launches_a_sweep_of_the_projected_held_out_cases(
    api_alice, django_capture_on_commit_callbacks
):
    study = StudyFactory(ranges_path="studies/1/ranges.pt")
    projections = ProjectionFactory.create_batch(2, case__study=study)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = api_alice.post(
            "/api/sweeps/", {"study": study.pk, "delta": 0.25, "strongest_k": 3}, format="json"
        )

    assert response.status_code == 201, response.content
    sweep = Sweep.objects.get()
    assert (sweep.delta, sweep.strongest_k, sweep.num_images) == (0.25, 3, len(projections))
    assert response.json()["job"] == sweep.job_id
    assert len(queued) == 1  # the first task, sent when the transaction commits


def test_a_study_without_style_ranges_cannot_be_swept(api_alice):
    study = StudyFactory()
    response = api_alice.post("/api/sweeps/", {"study": study.pk}, format="json")
    assert response.status_code == 400
    assert "style ranges" in str(response.json())
    assert not Sweep.objects.exists()


def test_cases_must_belong_to_the_study(api_alice):
    study = StudyFactory(ranges_path="r.pt")
    other = CaseFactory()
    response = api_alice.post("/api/sweeps/", {"study": study.pk, "cases": [other.pk]}, format="json")
    assert response.status_code == 400
    assert "cases" in response.json()


def test_bad_parameters_are_refused(api_alice):
    study = StudyFactory(ranges_path="r.pt")
    ProjectionFactory(case__study=study)
    response = api_alice.post("/api/sweeps/", {"study": study.pk, "delta": 3}, format="json")
    assert response.status_code == 400
    assert "delta" in response.json()
    assert not Sweep.objects.exists()


def test_reviewers_cannot_launch_sweeps(bob):
    client = APIClient()
    client.force_authenticate(bob)
    assert client.post("/api/sweeps/", {"study": StudyFactory().pk}, format="json").status_code == 403
