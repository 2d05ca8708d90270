"""Registering a study: its models must load together; its style ranges are estimated as a job."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from reviewapp.bridge.files import media_path
from reviewapp.models import Job, Study
from reviewapp.services.studies import study_create

pytestmark = pytest.mark.django_db


def test_it_registers_a_study_from_files_on_the_server_and_queues_its_style_ranges(alice, tiny_models):
    generator, classifier = tiny_models

    study = study_create(
        name="Tiny", generator_path=str(generator), classifier_source=str(classifier), created_by=alice
    )

    assert (study.resolution, study.channels) == (16, 1)
    assert study.style_dims == study.generator_config["conv_dims"] + study.generator_config["torgb_dims"]
    assert len(study.generator_sha256) == 64 and len(study.classifier_sha256) == 64
    assert study.classifier_config["target"] == "Pneumonia"
    assert study.ranges_job.kind == "style ranges" and study.ranges_job.status == Job.Status.PENDING


def test_it_names_the_file_that_is_not_a_checkpoint_and_stores_nothing(alice, tiny_models, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")

    with pytest.raises(ValidationError, match="Generator"):
        study_create(name="Broken", generator_path=str(broken), classifier_source=str(tiny_models[1]))

    assert not Study.objects.exists()
    assert not Job.objects.exists()


def test_it_names_a_classifier_that_cannot_be_loaded(alice, tiny_models):
    generator, classifier = tiny_models

    with pytest.raises(ValidationError, match="Classifier"):
        study_create(
            name="No weights",
            generator_path=str(generator),
            classifier_source="xrv:densenet121-res224-nonexistent",
            target_label="Effusion",
        )


def test_the_form_registers_uploaded_checkpoints(alice_client, tiny_models):
    generator, classifier = tiny_models
    response = alice_client.post(
        "/studies/new",
        {
            "name": "Uploaded",
            "target_label": "Pneumonia",
            "generator_file": SimpleUploadedFile("gan.pt", generator.read_bytes()),
            "classifier_file": SimpleUploadedFile("clf.ts", classifier.read_bytes()),
            "projection_steps": 20,
            "projection_batch_size": 4,
            "ranges_samples": 200,
        },
    )

    study = Study.objects.get(name="Uploaded")
    assert response.status_code == 302 and response.url == f"/studies/{study.pk}/"
    assert media_path(study.generator_path).is_file()
    assert study.generator_path.startswith("studies/uploads/")


def test_a_broken_upload_answers_400_with_the_reason_and_keeps_no_file(alice_client, tiny_models):
    uploads_before = (
        set(media_path("studies/uploads").glob("*/*")) if media_path("studies/uploads").exists() else set()
    )

    response = alice_client.post(
        "/studies/new",
        {
            "name": "Broken upload",
            "target_label": "Pneumonia",
            "generator_file": SimpleUploadedFile("gan.pt", b"\x00garbage"),
            "classifier_source": str(tiny_models[1]),
            "projection_steps": 20,
            "projection_batch_size": 4,
            "ranges_samples": 200,
        },
    )

    assert response.status_code == 400
    assert "Generator" in response.content.decode()
    assert not Study.objects.exists()
    uploads_after = (
        set(media_path("studies/uploads").glob("*/*")) if media_path("studies/uploads").exists() else set()
    )
    assert uploads_after == uploads_before


def test_a_path_that_does_not_exist_is_refused_with_its_name(alice_client, tiny_models):
    response = alice_client.post(
        "/studies/new",
        {
            "name": "Missing",
            "target_label": "Pneumonia",
            "generator_path": "/nowhere/gan.pt",
            "classifier_source": str(tiny_models[1]),
            "projection_steps": 20,
            "projection_batch_size": 4,
            "ranges_samples": 200,
        },
    )

    assert response.status_code == 400
    assert "/nowhere/gan.pt" in response.content.decode()


def test_reviewers_cannot_register_studies(bob_client):
    assert bob_client.get("/studies/new").status_code == 403
