"""The bad-input corpus (tests/bad_inputs) through every path of the app that takes files: the import service,
the case upload form, ``import_cases`` (folders and zip archives, labels CSVs) and study registration
(generator and classifier uploads). Each bad file gets a clear reason and a 4xx (or exit status 1), and
nothing of it is stored: rows and files under MEDIA_ROOT are counted before and after."""

from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from reviewapp.bridge.files import media_path
from reviewapp.models import Case, Job, Projection, Study
from reviewapp.services.cases import IncomingFile, case_import_files
from tests.bad_inputs import corpus
from tests.bad_inputs.corpus import (
    ACCEPTED_CASE_FILES,
    CHECKPOINT_FILES,
    LABEL_CSVS,
    PHI_KEYWORDS,
    REFUSED_CASE_FILES,
    CaseFile,
    CheckpointFile,
    LabelsCsv,
    Models,
)
from tests.helpers.studies import registered_study, tiny_case_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(alice, tiny_models):
    return registered_study(created_by=alice, models=tiny_models, projection_batch_size=4)


def stored_state() -> tuple[dict, set[Path]]:
    """Rows of every table a file import or a registration writes, and every file under MEDIA_ROOT."""
    rows = {model.__name__: model.objects.count() for model in (Study, Case, Projection, Job)}
    root = Path(settings.MEDIA_ROOT)
    return rows, {path for path in root.rglob("*") if path.is_file()}


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def stored_png(case: Case) -> np.ndarray:
    return np.asarray(Image.open(media_path(case.image.name)))


# ------------------------------------------------------------------------------------------------------------
# Case files: the service, the upload form, import_cases


@pytest.mark.parametrize("bad", REFUSED_CASE_FILES, ids=str)
def test_the_import_refuses_each_bad_case_file_with_its_reason_and_stores_nothing(study, bad: CaseFile):
    before = stored_state()

    report = case_import_files(study=study, files=[(bad.name, bad.make())])

    assert not report.imported
    assert [name for name, _ in report.refused] == [bad.name]
    reason = report.refused[0][1]
    assert bad.refused in reason
    assert "<_io." not in reason and "Traceback" not in reason
    assert stored_state() == before


@pytest.mark.parametrize("good", ACCEPTED_CASE_FILES, ids=str)
def test_each_image_mode_is_imported_and_converted_correctly(study, good: CaseFile):
    report = case_import_files(study=study, files=[(good.name, good.make())])

    assert not report.skipped
    (case,) = report.imported
    pixels = stored_png(case)
    assert pixels.shape == (16, 16) and pixels.dtype == np.uint8
    assert good.check is not None
    good.check(pixels, case.source_metadata)
    assert media_path(case.source_file.name).is_file()


def test_a_header_bomb_is_refused_before_any_pixel_is_decoded(study, monkeypatch):
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)

    report = case_import_files(study=study, files=[("bomb.png", corpus.header_bomb_png(12000, 12000))])

    assert "12000 x 12000" in report.refused[0][1]


def test_a_file_larger_than_the_limit_is_refused_without_being_read(study, settings):
    settings.CASE_UPLOAD_MAX_BYTES = 1000

    def unread() -> bytes:
        raise AssertionError("the file was read")

    report = case_import_files(study=study, files=[IncomingFile(name="big.png", size=5000, read=unread)])

    assert report.refused == [("big.png", "the file is 5,000 bytes, larger than the 1,000 allowed")]


def test_the_upload_form_names_each_refused_file_and_answers_400(alice_client, study):
    before = stored_state()

    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [SimpleUploadedFile(bad.name, bad.make()) for bad in REFUSED_CASE_FILES],
            "split": "heldout",
        },
    )

    assert response.status_code == 400
    text = page_text(response)
    for bad in REFUSED_CASE_FILES:
        assert re.search(rf"{re.escape(bad.name)}\s*</strong>: [^<]*{re.escape(bad.refused)}", text), bad.name
    assert f"{len(REFUSED_CASE_FILES)} file(s) were not imported" in re.sub(r"</?strong>", "", text)
    assert stored_state() == before


def test_one_empty_file_in_a_batch_is_named_and_the_others_are_imported(alice_client, study):
    good = tiny_case_files(2)
    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [SimpleUploadedFile(name, data) for name, data in good]
            + [SimpleUploadedFile("empty.png", b"")],
            "split": "heldout",
        },
    )

    assert response.status_code == 200
    assert re.search(r"empty\.png\s*</strong>: the file is empty", page_text(response))
    assert sorted(Case.objects.values_list("original_filename", flat=True)) == ["case000.png", "case001.png"]


def test_the_upload_form_imports_and_converts_each_image_mode(alice_client, study):
    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [SimpleUploadedFile(good.name, good.make()) for good in ACCEPTED_CASE_FILES],
            "split": "review",
        },
    )

    assert response.status_code == 302
    cases = {case.original_filename: case for case in Case.objects.all()}
    assert sorted(cases) == sorted(good.name for good in ACCEPTED_CASE_FILES)
    for good in ACCEPTED_CASE_FILES:
        assert good.check is not None
        good.check(stored_png(cases[good.name]), cases[good.name].source_metadata)


@pytest.mark.parametrize("labels", LABEL_CSVS, ids=str)
def test_the_upload_form_refuses_a_bad_labels_csv_with_the_reason(alice_client, study, labels: LabelsCsv):
    before = stored_state()

    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [SimpleUploadedFile(name, data) for name, data in tiny_case_files(2)],
            "labels_csv": SimpleUploadedFile(labels.name, labels.data),
            "split": "heldout",
        },
    )

    assert response.status_code == 400
    assert labels.refused in page_text(response)
    assert stored_state() == before


def test_a_labels_csv_larger_than_the_limit_is_refused(alice_client, study, settings):
    settings.CASE_LABELS_MAX_BYTES = 20
    response = alice_client.post(
        f"/studies/{study.pk}/cases/upload",
        {
            "files": [SimpleUploadedFile(name, data) for name, data in tiny_case_files(1)],
            "labels_csv": SimpleUploadedFile("labels.csv", b"filename,label\ncase000.png,1\n"),
            "split": "heldout",
        },
    )

    assert response.status_code == 400
    assert "at most 20 are read" in page_text(response)
    assert not Case.objects.exists()


def test_import_cases_lists_each_refused_file_and_exits_with_status_1(study, tmp_path, capsys):
    folder = tmp_path / "cases"
    folder.mkdir()
    for bad in REFUSED_CASE_FILES:
        (folder / bad.name).write_bytes(bad.make())
    (folder / "good.png").write_bytes(tiny_case_files(1)[0][1])
    refused_by_suffix = [bad for bad in REFUSED_CASE_FILES if Path(bad.name).suffix != ".txt"]  # not offered

    with pytest.raises(CommandError, match=rf"{len(refused_by_suffix)} file\(s\) were refused") as raised:
        call_command("import_cases", str(study.pk), str(folder), "--no-projection")

    assert raised.value.returncode == 1
    err = capsys.readouterr().err
    for bad in refused_by_suffix:
        assert f"skipped {bad.name}: " in err and bad.refused in err, bad.name
    assert list(Case.objects.values_list("original_filename", flat=True)) == ["good.png"]


def test_import_cases_refuses_each_bad_labels_csv(study, tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, data in tiny_case_files(2):
        (folder / name).write_bytes(data)
    before = stored_state()
    for labels in LABEL_CSVS:
        csv_path = tmp_path / labels.name
        csv_path.write_bytes(labels.data)

        with pytest.raises(CommandError) as raised:
            call_command("import_cases", str(study.pk), str(folder), "--labels", str(csv_path))

        assert labels.refused in str(raised.value), labels.name
        assert stored_state() == before, labels.name


def test_import_cases_refuses_a_study_id_too_large_for_the_database(study, tmp_path):
    with pytest.raises(CommandError, match="No study"):
        call_command("import_cases", "99999999999999999999", str(tmp_path))


# ------------------------------------------------------------------------------------------------------------
# Zip archives


def test_zip_entries_cannot_climb_out_and_keep_only_their_own_name(study, tmp_path):
    archive = tmp_path / "in" / "traversal.zip"
    archive.parent.mkdir()
    archive.write_bytes(corpus.archive_with_traversal())
    outside_before = {p for p in tmp_path.rglob("*")}

    call_command("import_cases", str(study.pk), str(archive), "--no-projection")

    names = sorted(Case.objects.values_list("original_filename", flat=True))
    assert names == ["absolute.png", "deep.png", "escaped.png", "windows.png"]
    assert {p for p in tmp_path.rglob("*")} == outside_before
    for case in Case.objects.all():
        for field in (case.image, case.source_file):
            assert media_path(field.name).resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve())


def test_a_zip_bomb_is_refused_from_its_declared_sizes_before_anything_is_inflated(
    study, tmp_path, monkeypatch
):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(corpus.archive_bomb())

    def no_inflating(self, *args, **kwargs):
        raise AssertionError("an entry was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_inflating)
    before = stored_state()

    with pytest.raises(CommandError, match="zip bomb"):
        call_command("import_cases", str(study.pk), str(archive))

    assert stored_state() == before


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("CASE_ZIP_MAX_MEMBERS", 3, "has 4 entries; at most 3"),
        ("CASE_ZIP_MAX_TOTAL_BYTES", 1000, "uncompressed"),
    ],
)
def test_a_zip_past_the_entry_limits_is_refused(study, tmp_path, settings, setting, value, message):
    setattr(settings, setting, value)
    archive = tmp_path / "many.zip"
    archive.write_bytes(corpus.zip_bytes(dict(tiny_case_files(4))))
    before = stored_state()

    with pytest.raises(CommandError, match=message):
        call_command("import_cases", str(study.pk), str(archive))

    assert stored_state() == before


def test_a_zip_entry_with_a_bad_checksum_is_refused_and_the_others_imported(study, tmp_path):
    archive = tmp_path / "crc.zip"
    archive.write_bytes(corpus.archive_with_bad_crc(dict(tiny_case_files(2))))

    with pytest.raises(CommandError, match=r"1 file\(s\) were refused"):
        call_command("import_cases", str(study.pk), str(archive), "--no-projection")

    assert sorted(Case.objects.values_list("original_filename", flat=True)) == ["case000.png", "case001.png"]


def test_a_zip_whose_labels_name_a_missing_file_is_refused_whole(study, tmp_path):
    archive = tmp_path / "cases.zip"
    members = dict(tiny_case_files(2))
    members["labels.csv"] = b"filename,label\ncase000.png,1\ncase001.png,0\nmissing.png,1\n"
    archive.write_bytes(corpus.zip_bytes(members))
    before = stored_state()

    with pytest.raises(CommandError, match="names 1 file\\(s\\) that are not in this import: missing.png"):
        call_command("import_cases", str(study.pk), str(archive))

    assert stored_state() == before


def test_a_truncated_zip_is_refused(study, tmp_path):
    archive = tmp_path / "cut.zip"
    archive.write_bytes(corpus.truncated(corpus.zip_bytes(dict(tiny_case_files(2)))))

    with pytest.raises(CommandError, match="neither a folder nor a zip archive"):
        call_command("import_cases", str(study.pk), str(archive))


# ------------------------------------------------------------------------------------------------------------
# DICOM de-identification, tag by tag


def every_keyword(ds: pydicom.Dataset) -> set[str]:
    found: set[str] = set()
    ds.walk(lambda dataset, element: found.add(element.keyword))
    return found


def test_every_identifying_dicom_element_is_removed_tag_by_tag(study):
    data = corpus.dicom_with_every_identifier()
    offered = every_keyword(pydicom.dcmread(io.BytesIO(data)))
    assert PHI_KEYWORDS <= offered  # the file really carries each of them

    (case,) = case_import_files(study=study, files=[("identified.dcm", data)]).imported

    stored = pydicom.dcmread(media_path(case.source_file.name))
    left = sorted(PHI_KEYWORDS & every_keyword(stored))
    assert left == []
    assert not any(element.tag.is_private for element in stored.iterall())
    assert stored.PatientIdentityRemoved == "YES"
    stored_bytes = media_path(case.source_file.name).read_bytes()
    for value in ("Doe^Jane", "Nested^Person", "19500101", "PHI-VALUE", "private patient code", "MRN-0042"):
        assert value.encode() not in stored_bytes, value
        assert value not in str(case.source_metadata), value


# ------------------------------------------------------------------------------------------------------------
# Study registration: uploaded generator and classifier files


@pytest.fixture
def models(tiny_lab_models, tmp_path) -> Models:
    generator, classifier = tiny_lab_models
    return Models(generator=generator, classifier=classifier, marker=tmp_path / "code-was-run")


def upload_folders() -> set[Path]:
    """The folders made for uploaded checkpoints (a failed registration removes its own)."""
    uploads = media_path("studies/uploads")
    return set(uploads.iterdir()) if uploads.exists() else set()


def register(client, **fields):
    data = {
        "name": "Hostile",
        "target_label": "Pneumonia",
        "projection_steps": 20,
        "projection_batch_size": 4,
        "ranges_samples": 200,
        **fields,
    }
    return client.post("/studies/new", data)


@pytest.mark.parametrize("bad", [c for c in CHECKPOINT_FILES if c.generator], ids=str)
def test_registration_refuses_each_bad_generator_upload_and_keeps_nothing(
    alice_client, models, bad: CheckpointFile
):
    before, folders_before = stored_state(), upload_folders()

    response = register(
        alice_client,
        generator_file=SimpleUploadedFile(bad.name, bad.make(models)),
        classifier_source=str(models.classifier),
    )

    assert response.status_code == 400
    text = page_text(response)
    assert "Generator" in text and re.search(bad.generator or "", text), text[-2000:]
    assert not models.marker.exists()
    assert stored_state() == before
    assert upload_folders() == folders_before


@pytest.mark.parametrize("bad", [c for c in CHECKPOINT_FILES if c.classifier], ids=str)
def test_registration_refuses_each_bad_classifier_upload_and_keeps_nothing(
    alice_client, models, bad: CheckpointFile
):
    before, folders_before = stored_state(), upload_folders()

    response = register(
        alice_client,
        generator_path=str(models.generator),
        classifier_file=SimpleUploadedFile(bad.name, bad.make(models)),
    )

    assert response.status_code == 400
    text = page_text(response)
    assert "Classifier" in text and re.search(bad.classifier or "", text), text[-2000:]
    assert not models.marker.exists()
    assert stored_state() == before
    assert upload_folders() == folders_before


def test_a_torchvision_state_dict_with_the_wrong_keys_is_refused(alice_client, models, tmp_path):
    import torch

    buffer = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(1, 8), "fc.bias": torch.zeros(1)}, buffer)
    before = stored_state()

    response = register(
        alice_client,
        generator_path=str(models.generator),
        classifier_file=SimpleUploadedFile("resnet.pt", buffer.getvalue()),
        classifier_kind="torchvision",
        classifier_arch="resnet18",
    )

    assert response.status_code == 400
    assert "does not fit torchvision resnet18" in page_text(response)
    assert stored_state() == before
