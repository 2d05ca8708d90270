"""De-identification of DICOM files before anything of them is stored.

A subset of the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile that fits single
radiographs: every person name (VR PN), date, time and date-time anywhere in the file, the patient,
institution, device and accession identifiers, free-text comments and every private tag are removed; study,
series and instance UIDs are replaced by new ones; ``PatientIdentityRemoved`` is set to ``YES`` and the method
recorded.
Burnt-in text in the pixels cannot be removed this way: a file whose ``BurnedInAnnotation`` is ``YES`` is refused
before it gets here (``reviewapp.bridge.cases.convert_case_image``); the value of others is kept in the case's
metadata.
"""

from __future__ import annotations

import io

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

METHOD = "Basic profile: names, dates, IDs, private tags removed"  # LO: 64 characters at most

#: Removed wherever they occur, besides every element whose VR is PN, DA, TM or DT.
IDENTIFYING_KEYWORDS = frozenset(
    {
        "AccessionNumber",
        "AdditionalPatientHistory",
        "AdmissionID",
        "BranchOfService",
        "CountryOfResidence",
        "CurrentPatientLocation",
        "DerivationDescription",
        "DeviceSerialNumber",
        "DeviceUID",
        "EthnicGroup",
        "FillerOrderNumberImagingServiceRequest",
        "ImageComments",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionName",
        "IssuerOfPatientID",
        "MedicalAlerts",
        "MedicalRecordLocator",
        "MilitaryRank",
        "Occupation",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientAge",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientID",
        "PatientInsurancePlanCodeSequence",
        "PatientMotherBirthName",
        "PatientName",
        "PatientReligiousPreference",
        "PatientSex",
        "PatientSize",
        "PatientTelephoneNumbers",
        "PatientWeight",
        "PerformedProcedureStepID",
        "PlacerOrderNumberImagingServiceRequest",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "RequestAttributesSequence",
        "RequestingService",
        "ScheduledProcedureStepID",
        "StationName",
        "StudyDescription",
        "StudyID",
        "RequestedProcedureID",
    }
)
REPLACED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
DATE_AND_NAME_VRS = frozenset({"PN", "DA", "TM", "DT"})


def deidentify_dataset(ds: Dataset) -> Dataset:
    """Remove identifying elements from ``ds`` in place (sequences included) and mark it; returns it."""
    ds.remove_private_tags()

    def drop(dataset: Dataset, element) -> None:
        if element.VR in DATE_AND_NAME_VRS or element.keyword in IDENTIFYING_KEYWORDS:
            del dataset[element.tag]

    ds.walk(drop)
    for keyword in REPLACED_UIDS:
        if keyword in ds:
            setattr(ds, keyword, generate_uid())
    if "SOPInstanceUID" in ds and getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    return ds


def deidentified_dicom_bytes(ds: Dataset) -> bytes:
    """The de-identified dataset written as a DICOM file."""
    buffer = io.BytesIO()
    deidentify_dataset(ds).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_facts(ds: Dataset) -> dict[str, str | int]:
    """Non-identifying facts worth keeping about a DICOM radiograph."""
    facts: dict[str, str | int] = {}
    for keyword in (
        "Modality",
        "ViewPosition",
        "BodyPartExamined",
        "PhotometricInterpretation",
        "BitsStored",
        "Rows",
        "Columns",
        "Manufacturer",
        "BurnedInAnnotation",
    ):
        value = getattr(ds, keyword, None)
        if value not in (None, ""):
            facts[keyword] = value if isinstance(value, int) else str(value)
    return facts
