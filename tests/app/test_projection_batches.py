"""A projection job projects its batch, writes files before rows, and can run twice without harm."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.bridge.files import file_sha256, media_path
from reviewapp.models import Job, Projection
from reviewapp.services.cases import case_import_files
from reviewapp.tasks import projection_run_task
from tests.helpers.studies import tiny_case_files

pytestmark = pytest.mark.django_db


def test_a_batch_is_projected_with_its_files_and_fidelity(tiny_study):
    case_import_files(study=tiny_study, files=tiny_case_files(2))
    job = Job.objects.get(kind="projection")

    projection_run_task(job.pk, projection_pks=list(Projection.objects.values_list("pk", flat=True)))

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.progress == 1.0
    for projection in Projection.objects.all():
        assert projection.status == Projection.Status.SUCCEEDED
        styles = np.load(media_path(projection.styles_file.name))
        assert list(styles.shape) == projection.styles_shape == [tiny_study.style_dims]
        assert projection.styles_dtype == "float32"
        assert projection.styles_sha256 == file_sha256(media_path(projection.styles_file.name))
        assert media_path(projection.reconstruction.name).is_file()
        assert projection.psnr is not None and 0.0 <= projection.prob_original <= 1.0
        assert projection.config["steps"] == tiny_study.projection_steps
        assert projection.started_at <= projection.finished_at


def test_running_a_finished_batch_again_changes_nothing(tiny_study):
    from reviewapp.services.jobs import job_create, job_start
    from reviewapp.services.projections import projection_run as run_service

    case_import_files(study=tiny_study, files=tiny_case_files(1))
    job = Job.objects.get(kind="projection")
    pks = list(Projection.objects.values_list("pk", flat=True))
    projection_run_task(job.pk, projection_pks=pks)
    before = Projection.objects.get().styles_sha256

    again = job_create(kind="projection")
    job_start(job=again)
    message = run_service(job=again, projection_pks=pks)

    assert message == "Nothing left to project."
    assert Projection.objects.get().styles_sha256 == before


def test_cases_whose_projection_job_was_cancelled_before_it_ran_can_be_projected_again(tiny_study):
    from reviewapp.selectors.studies import study_counts
    from reviewapp.services.jobs import job_request_cancel
    from reviewapp.services.projections import projection_retry_failed

    case_import_files(study=tiny_study, files=tiny_case_files(2))
    job_request_cancel(job=Job.objects.get(kind="projection"))
    assert study_counts(study=tiny_study).failed == 2

    jobs = projection_retry_failed(study=tiny_study)

    assert len(jobs) == 1
    counts = study_counts(study=tiny_study)
    assert (counts.failed, counts.projecting) == (0, 2)
