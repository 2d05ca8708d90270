"""/jobs/<pk>/progress tells a page how far a job is."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from reviewapp.models import Job
from reviewapp.services.jobs import job_create, job_progress, job_start


def test_it_reports_status_progress_message_and_eta(alice_client, alice):
    job = job_create(kind="sweep", created_by=alice)
    job_start(job=job)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=30))
    job_progress(job=job, done=1, total=4, message="Image 1 of 4")

    payload = alice_client.get(f"/jobs/{job.pk}/progress").json()

    assert payload["status"] == "running"
    assert payload["progress"] == 0.25
    assert payload["message"] == "Image 1 of 4"
    assert 85 <= payload["eta_seconds"] <= 95
    assert payload["finished"] is False


def test_a_pending_job_has_no_eta(alice_client, alice):
    job = job_create(kind="sweep", created_by=alice)

    payload = alice_client.get(f"/jobs/{job.pk}/progress").json()

    assert payload["status"] == "pending"
    assert payload["eta_seconds"] is None


def test_bob_cannot_see_a_job_of_alice(bob_client, alice):
    job = job_create(kind="sweep", created_by=alice)

    assert bob_client.get(f"/jobs/{job.pk}/progress").status_code == 404


def test_bob_sees_his_own_job(bob_client, bob):
    job = job_create(kind="export", created_by=bob)

    assert bob_client.get(f"/jobs/{job.pk}/progress").status_code == 200


def test_an_unknown_job_is_404(alice_client):
    assert alice_client.get("/jobs/999999/progress").status_code == 404
