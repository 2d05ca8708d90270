"""The audit trail: who viewed which case, changed which answer, launched or cancelled which job and exported
what; append-only, read-only in the admin, exported as CSV by admins."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.models import AuditEvent, Job
from reviewapp.services import audit
from reviewapp.services.jobs import job_create
from tests.helpers.reviews import items_in_reader_order, review_set_with_items
from tests.helpers.services import postgres_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPLETE = {"q1_meaningful": "no", "q2_pneumonia": "no"}


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("pk"))


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_opening_the_reading_screen_records_the_case_with_one_insert(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    case = items_in_reader_order(review_set, bob)[0].case

    with CaptureQueriesContext(connection) as queries:
        response = bob_client.get(reverse("review-item", args=[review_set.pk, 1]))

    assert response.status_code == 200
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and "reviewapp_auditevent" in inserts[0]
    (event,) = events(action="view_item")
    assert (event.username, event.user_id, event.target) == ("bob", bob.pk, f"case:{case.pk}")
    assert event.detail == {"review_set": review_set.pk, "position": 1}


def test_each_item_image_sent_is_recorded(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, "perturbed"]))
    bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, "nonsense"]))

    (event,) = events(action="view_image")
    assert event.target == f"case:{review_set.items.get().case.pk}"
    assert event.detail["kind"] == "perturbed"


def test_a_reader_who_may_not_see_an_item_leaves_no_view(charlie_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert charlie_client.get(reverse("review-item", args=[review_set.pk, 1])).status_code == 404
    assert not events()


def test_answers_changed_and_submitted_are_recorded_with_the_fields_changed(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    draft = reverse("review-item-autosave", args=[review_set.pk, 1])
    bob_client.post(draft, {"comment": "first look"})
    bob_client.post(draft, {"comment": "first look", "seconds": "3"})  # nothing changed: not recorded
    bob_client.post(reverse("review-item", args=[review_set.pk, 1]), {**COMPLETE, "comment": "first look"})

    saved, submitted = events(action__in=["save_answer", "submit_answer"])
    annotation = review_set.items.get().annotations.get()
    assert (saved.action, saved.target, saved.detail["changed"]) == (
        "save_answer",
        f"annotation:{annotation.pk}",
        ["comment"],
    )
    assert submitted.action == "submit_answer"
    assert submitted.detail["changed"] == ["q1_meaningful", "q2_pneumonia"]
    assert submitted.detail["version"] == annotation.version


def test_finalising_a_set_is_recorded(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    bob_client.post(reverse("review-item", args=[review_set.pk, 1]), COMPLETE)
    bob_client.post(reverse("review-set-finalise", args=[review_set.pk]))
    (event,) = events(action="finalise_set")
    assert event.target == f"reviewset:{review_set.pk}"


def test_launching_and_cancelling_jobs_is_recorded(alice, alice_client, bob):
    job = job_create(kind="projection", created_by=alice, message="3 cases")
    system_job = job_create(kind="gallery")
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    sweep = review_set.sweep
    sweep.job = job_create(kind="sweep", created_by=alice)
    sweep.save()

    alice_client.post(reverse("sweep-cancel", args=[sweep.pk]))

    launches = events(action="launch_job")
    assert [(e.target, e.username, e.detail["kind"]) for e in launches] == [
        (f"job:{job.pk}", "alice", "projection"),
        (f"job:{system_job.pk}", "", "gallery"),
        (f"job:{sweep.job_id}", "alice", "sweep"),
    ]
    (cancel,) = events(action="cancel_job")
    assert (cancel.target, cancel.username, cancel.detail) == (
        f"job:{sweep.job_id}",
        "alice",
        {"kind": "sweep", "sweep": sweep.pk},
    )
    assert Job.objects.get(pk=sweep.job_id).status == Job.Status.CANCELLED


def test_exports_are_recorded_on_the_web_and_the_api(alice, alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    alice_client.get(reverse("export-reviews", args=[review_set.pk]) + "?drafts=1")
    alice_client.get(reverse("export-dimensions", args=[review_set.sweep_id]))
    api = APIClient()
    api.force_authenticate(alice)
    api.get(f"/api/review-sets/{review_set.pk}/export/?table=agreement", HTTP_ACCEPT="text/csv")

    exported = [(e.target, e.detail) for e in events(action="export")]
    assert exported == [
        (f"reviewset:{review_set.pk}", {"table": "reviews", "drafts": True}),
        (f"sweep:{review_set.sweep_id}", {"table": "dimensions"}),
        (f"reviewset:{review_set.pk}", {"table": "agreement", "via": "api"}),
    ]


def test_the_audit_csv_is_for_admins_and_filters(alice, alice_client, bob, bob_client):
    audit.record(bob, "view_item", "case:1", position=1)
    audit.record(bob, "view_item", "case:2", position=2)
    audit.record(alice, "launch_job", "job:9", kind="sweep")
    audit.record(alice, "export", "=HYPERLINK(1)")

    assert bob_client.get(reverse("export-audit")).status_code == 403
    everything = csv_rows(alice_client.get(reverse("export-audit")))
    bobs = csv_rows(alice_client.get(reverse("export-audit") + "?user=bob&action=view_item&target=case:2"))
    bad = alice_client.get(reverse("export-audit") + "?since=yesterday&action=sing")

    # The export is recorded before its rows are read, so it lists itself last.
    assert [r["target"] for r in everything] == ["case:1", "case:2", "job:9", "'=HYPERLINK(1)", "audit"]
    assert list(everything[0]) == ["at", "user_id", "username", "action", "target", "detail"]
    assert (bobs[0]["username"], json.loads(bobs[0]["detail"])) == ("bob", {"position": 2})
    assert len(bobs) == 1
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"since", "action"}
    # Each export of the trail is recorded with its filters.
    assert events(action="export", target="audit")[1].detail == {
        "username": "bob",
        "action": "view_item",
        "target": "case:2",
    }


def test_the_admin_page_is_read_only_and_links_the_export(alice_client, bob):
    event = audit.record(bob, "view_item", "case:1")
    listing = alice_client.get(reverse("admin:reviewapp_auditevent_changelist"))
    change = alice_client.post(reverse("admin:reviewapp_auditevent_change", args=[event.pk]), {"target": "x"})
    delete = alice_client.post(reverse("admin:reviewapp_auditevent_delete", args=[event.pk]), {"post": "yes"})
    add = alice_client.get(reverse("admin:reviewapp_auditevent_add"))

    assert listing.status_code == 200
    assert reverse("export-audit") in listing.content.decode()
    assert (change.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert AuditEvent.objects.get().target == "case:1"


def test_audit_rows_cannot_be_changed_or_deleted(bob):
    """Through the model on every database; on PostgreSQL a trigger refuses raw SQL as well."""
    expected = os.environ.get("AUDIT_EXPECTS_DATABASE")
    if expected:
        assert connection.vendor == expected
    event = audit.record(bob, "view_item", "case:1")
    event.target = "case:2"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    if connection.vendor == "postgresql":
        for sql in ("UPDATE reviewapp_auditevent SET target = 'x'", "DELETE FROM reviewapp_auditevent"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql)
    assert AuditEvent.objects.get().target == "case:1"


@pytest.mark.timeout(300)
def test_the_append_only_trigger_holds_on_postgresql():
    env = {**os.environ, "DATABASE_URL": postgres_url(), "AUDIT_EXPECTS_DATABASE": "postgresql"}
    test_id = f"{Path(__file__).relative_to(REPO_ROOT)}::test_audit_rows_cannot_be_changed_or_deleted"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test_id, "-p", "no:cacheprovider", "-q"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
