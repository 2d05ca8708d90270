"""DICOM cases are de-identified before anything of them is stored; MONOCHROME1 is inverted."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from django.conf import settings
from PIL import Image

from reviewapp.bridge.files import media_path
from reviewapp.services.cases import case_import_files
from tests.helpers.studies import dicom_bytes, registered_study

pytestmark = pytest.mark.django_db

IDENTIFYING = ["Doe^Jane", "MRN-0042", "19500101", "1 Hospital Road", "ALT-7", "St Example Hospital",
               "House^Gregory", "ACC123", "Nested^Name", "patient tracking code"]  # fmt: skip


@pytest.fixture
def study(alice, tiny_models):
    return registered_study(created_by=alice, models=tiny_models)


def gradient(size: int = 32) -> np.ndarray:
    return np.tile(np.linspace(0, 4000, size), (size, 1))


def every_stored_byte() -> bytes:
    return b"".join(path.read_bytes() for path in settings.MEDIA_ROOT.rglob("*") if path.is_file())


def test_no_patient_tag_survives_in_the_stored_dicom(study, alice):
    report = case_import_files(study=study, files=[("chest.dcm", dicom_bytes(gradient()))], created_by=alice)

    case = report.imported[0]
    stored = pydicom.dcmread(media_path(case.source_file.name))
    for keyword in ["PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "OtherPatientIDs",
                    "InstitutionName", "ReferringPhysicianName", "AccessionNumber", "StudyDate"]:  # fmt: skip
        assert keyword not in stored, keyword
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.DeidentificationMethod
    assert not any(element.tag.is_private for element in stored)
    assert stored.Modality == "DX"


def test_no_identifying_value_is_written_anywhere(study, alice):
    case_import_files(study=study, files=[("chest.dcm", dicom_bytes(gradient()))], created_by=alice)

    stored = every_stored_byte()
    for value in IDENTIFYING:
        assert value.encode() not in stored, value
    assert "Doe" not in str(study.cases.get().source_metadata)


def test_uids_are_replaced(study, alice):
    data = dicom_bytes(gradient())
    original = pydicom.dcmread(io.BytesIO(data))

    case = case_import_files(study=study, files=[("chest.dcm", data)], created_by=alice).imported[0]

    stored = pydicom.dcmread(media_path(case.source_file.name))
    assert stored.StudyInstanceUID != original.StudyInstanceUID
    assert stored.SOPInstanceUID != original.SOPInstanceUID


def test_monochrome1_is_inverted_so_that_dense_is_bright(study, alice):
    files = [
        ("mono2.dcm", dicom_bytes(gradient(), photometric="MONOCHROME2")),
        ("mono1.dcm", dicom_bytes(gradient(), photometric="MONOCHROME1", patient_name="Roe^Richard")),
    ]

    report = case_import_files(study=study, files=files, created_by=alice)

    mono2, mono1 = (np.asarray(Image.open(media_path(c.image.name)), dtype=float) for c in report.imported)
    assert mono2.shape == (16, 16)
    assert mono2[:, -1].mean() > mono2[:, 0].mean()
    assert mono1[:, -1].mean() < mono1[:, 0].mean()
