"""Registering studies and estimating their style ranges."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from reviewapp.bridge import files, models
from reviewapp.models import Job, Study
from reviewapp.services.jobs import (
    Tasks,
    job_abort_fn,
    job_create,
    job_enqueue,
    job_progress_fn,
    job_step,
)
from reviewapp.services.projections import projection_queue_waiting

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".pkl", ".ts", ".torchscript"}
UPLOADS_FOLDER = "studies/uploads"


def study_store_upload(*, upload: UploadedFile, role: str) -> str:
    """Keep an uploaded checkpoint under MEDIA_ROOT; returns its stored name for a Study path field."""
    suffix = Path(upload.name or "").suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise ValidationError(
            f"{upload.name}: a {role} checkpoint must be one of {', '.join(sorted(CHECKPOINT_SUFFIXES))}."
        )
    if upload.size > settings.CHECKPOINT_UPLOAD_MAX_BYTES:
        raise ValidationError(f"{upload.name}: the file is larger than the allowed checkpoint size.")
    name = f"{UPLOADS_FOLDER}/{uuid.uuid4().hex}/{role}{suffix}"
    try:
        files.write_atomic(files.media_path(name), upload.chunks())
    except BaseException:
        study_discard_uploads(names=[name])
        raise
    return name


def study_discard_uploads(*, names: list[str]) -> None:
    """Remove stored checkpoint uploads of a registration that failed, with the folders made for them."""
    files.delete_media(names)
    for name in names:
        folder = files.media_path(name).parent
        if name.startswith(f"{UPLOADS_FOLDER}/") and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def study_check_server_path(*, path: str, role: str) -> str:
    """A checkpoint named by its absolute path on the server must exist and be a file."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        raise ValidationError(f"The {role} path must be absolute: {path}")
    if not candidate.is_file():
        raise ValidationError(f"The {role} file does not exist on the server: {path}")
    return str(candidate)


def study_check_classifier_source(*, source: str) -> str:
    """A classifier named in the form: a built-in name ('demo', 'xrv:...') as it is, a path checked like the
    other checkpoints' (empty stays empty)."""
    if not source or not models.classifier_names_a_file(source):
        return source
    return study_check_server_path(path=source, role="classifier")


@transaction.atomic
def study_create(
    *,
    name: str,
    generator_path: str,
    classifier_source: str,
    target_label: str = "Pneumonia",
    discriminator_path: str = "",
    classifier_kind: str = "",
    classifier_options: dict | None = None,
    autoencoder_path: str = "",
    notes: str = "",
    ranges_samples: int = 100_000,
    projection_steps: int = 500,
    projection_batch_size: int = 16,
    created_by: AbstractBaseUser | None = None,
    estimate_ranges: bool = True,
) -> Study:
    """Register a study after loading its models; queue the estimation of its style ranges.

    Raises ``ValidationError`` with a message naming the file and the problem when a model does not load.
    """
    if Study.objects.filter(name=name).exists():
        raise ValidationError(f"A study named {name!r} exists already.")
    try:
        inspection = models.inspect_study_files(
            generator_path=generator_path,
            discriminator_path=discriminator_path,
            classifier_source=classifier_source,
            classifier_kind=classifier_kind,
            target_label=target_label,
            classifier_options=classifier_options,
        )
        if autoencoder_path:
            models.check_autoencoder(
                autoencoder_path, resolution=inspection.resolution, channels=inspection.channels
            )
    except models.StudyModelError as error:
        raise ValidationError(str(error)) from None
    study = Study(
        name=name,
        notes=notes,
        generator_path=generator_path,
        generator_sha256=inspection.generator_sha256,
        generator_config=inspection.generator_config,
        discriminator_path=discriminator_path,
        discriminator_sha256=inspection.discriminator_sha256,
        classifier_source=classifier_source,
        classifier_kind=classifier_kind,
        classifier_config=inspection.classifier_config,
        classifier_sha256=inspection.classifier_sha256,
        autoencoder_path=autoencoder_path,
        target_label=target_label,
        resolution=inspection.resolution,
        channels=inspection.channels,
        style_dims=inspection.style_dims,
        ranges_samples=ranges_samples,
        projection_steps=projection_steps,
        projection_batch_size=projection_batch_size,
        created_by=created_by,
    )
    study.full_clean()
    study.save()
    if estimate_ranges:
        study_queue_ranges(study=study, created_by=created_by)
    return study


@transaction.atomic
def study_queue_ranges(*, study: Study, created_by: AbstractBaseUser | None = None) -> Job:
    """Queue the estimation of the study's style ranges (min, max, mean per style dimension)."""
    job = job_create(
        kind="style ranges", created_by=created_by, message=f"{study.name}: {study.ranges_samples} samples"
    )
    Study.objects.filter(pk=study.pk).update(ranges_job=job)
    study.ranges_job = job
    job_enqueue(job=job, task=Tasks.ESTIMATE_RANGES, kwargs={"study_pk": study.pk})
    return job


def study_estimate_ranges(*, study: Study, job: Job) -> str:
    """Estimate and store the style ranges, then queue the projections that were waiting for them."""
    with job_step():
        fields = models.estimate_ranges_file(
            study, progress_fn=job_progress_fn(job), abort_fn=job_abort_fn(job)
        )
    study_record_ranges(study=study, ranges_path=fields["ranges_path"], ranges_sha256=fields["ranges_sha256"])
    return f"Style ranges of {study.style_dims} dimensions from {study.ranges_samples} samples."


@transaction.atomic
def study_record_ranges(*, study: Study, ranges_path: str, ranges_sha256: str) -> None:
    Study.objects.filter(pk=study.pk).update(ranges_path=ranges_path, ranges_sha256=ranges_sha256)
    study.ranges_path, study.ranges_sha256 = ranges_path, ranges_sha256
    projection_queue_waiting(study=study)
