"""Importing cases: uploaded files, folders and zip archives with a labels CSV."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from reviewapp.bridge.cases import CASE_SUFFIXES, ImageReadError, convert_case_image, is_case_file
from reviewapp.bridge.files import bytes_sha256, delete_media, write_media
from reviewapp.models import Case, Study
from reviewapp.services.projections import projection_queue

LABEL_WORDS = {
    "1": Case.Label.POSITIVE,
    "positive": Case.Label.POSITIVE,
    "yes": Case.Label.POSITIVE,
    "true": Case.Label.POSITIVE,
    "0": Case.Label.NEGATIVE,
    "negative": Case.Label.NEGATIVE,
    "no": Case.Label.NEGATIVE,
    "false": Case.Label.NEGATIVE,
    "": None,
}


@dataclass
class CaseFacts:
    """What a labels CSV says about one file."""

    label: int | None = None
    split: str | None = None


@dataclass
class ImportReport:
    imported: list[Case] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def case_read_labels_csv(data: bytes) -> dict[str, CaseFacts]:
    """Parse a labels CSV with a ``filename`` column and optional ``label`` (0/1) and ``split`` columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The labels CSV is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "filename" not in reader.fieldnames:
        raise ValidationError(
            "The labels CSV needs a 'filename' column (and optionally 'label' and 'split')."
        )
    facts: dict[str, CaseFacts] = {}
    for line, row in enumerate(reader, start=2):
        label_word = (row.get("label") or "").strip().lower()
        if label_word not in LABEL_WORDS:
            raise ValidationError(f"Labels CSV line {line}: label {row.get('label')!r} is not 0/1.")
        split = (row.get("split") or "").strip().lower() or None
        if split is not None and split not in Case.Split.values:
            raise ValidationError(
                f"Labels CSV line {line}: split {split!r} is not one of {', '.join(Case.Split.values)}."
            )
        facts[Path(row["filename"].strip()).name] = CaseFacts(label=LABEL_WORDS[label_word], split=split)
    return facts


@transaction.atomic
def case_import_files(
    *,
    study: Study,
    files: Iterable[tuple[str, bytes]],
    split: str = Case.Split.HELDOUT,
    labels: dict[str, CaseFacts] | None = None,
    created_by: AbstractBaseUser | None = None,
    queue_projections: bool = True,
) -> ImportReport:
    """Convert and store each ``(file name, bytes)`` as a case of ``study`` and queue its projection.

    A file that cannot be read, is too large, or was imported before is skipped with the reason; nothing of it
    is stored. DICOM is de-identified before anything of it is written.
    """
    if split not in Case.Split.values:
        raise ValidationError(f"Unknown split {split!r}.")
    if not study.resolution:
        raise ValidationError("The study has no resolution; it was not validated.")
    labels = labels or {}
    report = ImportReport()
    written: list[str] = []
    seen: set[str] = set()
    try:
        for filename, data in files:
            name = Path(filename).name
            digest = bytes_sha256(data)
            reason = _reason_to_skip(study=study, name=name, data=data, digest=digest, seen=seen)
            if reason:
                report.skipped.append((name, reason))
                continue
            try:
                converted = convert_case_image(data, filename=name, size=study.resolution)
            except ImageReadError as error:
                report.skipped.append((name, str(error)))
                continue
            stem = f"studies/{study.pk}/cases/{uuid.uuid4().hex}"
            image_name = write_media(f"{stem}.png", converted.png)
            written.append(image_name)
            source_name = write_media(f"{stem}-source{converted.source_suffix}", converted.source)
            written.append(source_name)
            facts = labels.get(name, CaseFacts())
            case = Case.objects.create(
                study=study,
                image=image_name,
                image_sha256=converted.png_sha256,
                width=converted.size,
                height=converted.size,
                source_file=source_name,
                original_filename=name[:255],
                source_sha256=digest,
                label=facts.label,
                split=facts.split or split,
                source_metadata=converted.metadata,
            )
            report.imported.append(case)
        if queue_projections and report.imported:
            projection_queue(cases=report.imported, created_by=created_by)
    except BaseException:
        delete_media(written)
        raise
    return report


def _reason_to_skip(*, study: Study, name: str, data: bytes, digest: str, seen: set[str]) -> str:
    if not is_case_file(data, name):
        return f"unsupported file type {Path(name).suffix.lower()} (use PNG, JPEG, TIFF, BMP or DICOM)"
    if not data:
        return "the file is empty"
    if len(data) > settings.CASE_UPLOAD_MAX_BYTES:
        return "the file is larger than the allowed size"
    if digest in seen:
        return "the same file is in this import twice"
    seen.add(digest)
    existing = Case.objects.filter(study=study, source_sha256=digest).first()
    if existing is not None:
        return f"already imported as case {existing.pk} ({existing.original_filename})"
    return ""


def iter_folder_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of the image and DICOM files in a folder (recursively) or a zip archive."""
    suffixes = CASE_SUFFIXES
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                inner = Path(info.filename)
                if not info.is_dir() and inner.suffix.lower() in suffixes and not inner.name.startswith("."):
                    yield inner.name, archive.read(info)
        return
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.suffix.lower() in suffixes and not file.name.startswith("."):
            yield file.name, file.read_bytes()


def labels_from_archive(path: Path, csv_name: str = "labels.csv") -> bytes | None:
    """The labels CSV inside a folder or zip archive, if there is one."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if Path(info.filename).name == csv_name:
                    return archive.read(info)
        return None
    candidate = path / csv_name
    return candidate.read_bytes() if candidate.is_file() else None
