"""Importing cases: formats, conversion to the study's resolution, broken files, labels, projection jobs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from reviewapp.bridge.files import media_path
from reviewapp.models import Case, Job, Projection
from reviewapp.services.cases import case_import_files, case_read_labels_csv
from tests.helpers.studies import png_bytes, registered_study, tiny_case_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(alice, tiny_models):
    return registered_study(created_by=alice, models=tiny_models, projection_batch_size=2)


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def stored_files() -> set:
    root = media_path("studies")
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_8_and_16_bit_png_and_jpeg_become_pngs_at_the_study_resolution(study):
    ramp = np.tile(np.linspace(0, 1, 48), (40, 1))
    files = [
        ("eight.png", png_bytes((ramp * 255).astype(np.uint8))),
        ("sixteen.png", encoded((ramp * 65535).astype(np.uint16), "PNG")),
        ("photo.jpg", encoded((ramp * 255).astype(np.uint8), "JPEG")),
    ]

    report = case_import_files(study=study, files=files)

    assert [c.original_filename for c in report.imported] == ["eight.png", "sixteen.png", "photo.jpg"]
    for case in report.imported:
        image = Image.open(media_path(case.image.name))
        assert image.size == (16, 16) and image.mode == "L"
        assert (case.width, case.height) == (16, 16)
    assert report.imported[1].source_metadata["bits"] == 16


def test_a_broken_file_is_listed_with_its_reason_and_nothing_of_it_is_stored(study):
    before = stored_files()
    files = [
        ("good.png", tiny_case_files(1)[0][1]),
        ("broken.png", b"\x89PNG truncated"),
        ("notes.txt", b"hi"),
    ]

    report = case_import_files(study=study, files=files)

    assert [c.original_filename for c in report.imported] == ["good.png"]
    reasons = dict(report.skipped)
    assert "not a PNG, JPEG, TIFF or BMP image" in reasons["broken.png"]
    assert "unsupported file type .txt" in reasons["notes.txt"]
    assert len(stored_files() - before) == 2  # the good case's PNG and its source
    assert Case.objects.count() == 1


def test_a_file_imported_again_is_skipped(study):
    files = tiny_case_files(1)
    case_import_files(study=study, files=files)

    report = case_import_files(study=study, files=files)

    assert not report.imported
    assert "already imported" in report.skipped[0][1]


def test_labels_and_splits_come_from_the_csv(study):
    labels = case_read_labels_csv(b"filename,label,split\nsub/case000.png,1,review\ncase001.png,0,heldout\n")

    report = case_import_files(study=study, files=tiny_case_files(3), labels=labels)

    by_name = {c.original_filename: c for c in report.imported}
    assert (by_name["case000.png"].label, by_name["case000.png"].split) == (1, "review")
    assert (by_name["case001.png"].label, by_name["case001.png"].split) == (0, "heldout")
    assert by_name["case002.png"].label is None


def test_cases_wait_for_the_style_ranges(study):
    case_import_files(study=study, files=tiny_case_files(3))

    assert Projection.objects.filter(status=Projection.Status.PENDING, job__isnull=True).count() == 3
    assert not Job.objects.filter(kind="projection").exists()


def test_each_batch_of_new_cases_gets_a_projection_job_once_the_ranges_exist(study):
    from reviewapp.services.studies import study_record_ranges

    case_import_files(study=study, files=tiny_case_files(3))
    study_record_ranges(study=study, ranges_path="studies/x/ranges.pt", ranges_sha256="0" * 64)

    jobs = Job.objects.filter(kind="projection")
    assert jobs.count() == 2  # batches of 2
    assert not Projection.objects.filter(job__isnull=True).exists()


def test_the_upload_page_lists_what_it_skipped(alice_client, study):
    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [
                SimpleUploadedFile("good.png", tiny_case_files(1)[0][1]),
                SimpleUploadedFile("broken.dcm", b"DICM but not really"),
            ],
            "split": "heldout",
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "broken.dcm" in page and "not a readable DICOM file" in page
    assert Case.objects.count() == 1


def test_an_upload_with_only_broken_files_answers_400(alice_client, study):
    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {"files": [SimpleUploadedFile("broken.png", b"nope")], "split": "heldout"},
    )

    assert response.status_code == 400
    assert not Case.objects.exists()


def test_import_cases_reads_a_zip_with_its_labels_csv(study, tmp_path, capsys):
    archive = tmp_path / "cases.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in tiny_case_files(2):
            zf.writestr(f"images/{name}", data)
        zf.writestr("images/broken.png", b"nope")
        zf.writestr("labels.csv", "filename,label,split\ncase000.png,1,heldout\ncase001.png,0,review\n")

    with pytest.raises(CommandError, match="1 file\\(s\\) were refused"):
        call_command("import_cases", str(study.pk), str(archive))

    assert {c.original_filename: c.split for c in Case.objects.all()} == {
        "case000.png": "heldout",
        "case001.png": "review",
    }
    captured = capsys.readouterr()
    assert "Imported 2 case(s)" in captured.out
    assert "broken.png" in captured.err


def test_tiff_and_bmp_from_a_folder_are_imported_like_uploads(study, tmp_path):
    from reviewapp.bridge.cases import CASE_SUFFIXES
    from reviewapp.services.cases import iter_folder_files

    ramp = (np.tile(np.linspace(0, 1, 32), (32, 1)) * 255).astype(np.uint8)
    (tmp_path / "scan.tif").write_bytes(encoded(ramp, "TIFF"))
    (tmp_path / "scan.bmp").write_bytes(encoded(ramp, "BMP"))
    (tmp_path / "notes.txt").write_text("not an image")

    files = list(iter_folder_files(tmp_path))
    report = case_import_files(study=study, files=files)

    assert [file.name for file in files] == ["scan.bmp", "scan.tif"]
    assert {".tif", ".tiff", ".bmp", ".dcm"} <= CASE_SUFFIXES
    assert [c.original_filename for c in report.imported] == ["scan.bmp", "scan.tif"]
    assert report.skipped == []
