"""Importing cases: uploaded files, folders and zip archives with a labels CSV."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from reviewapp.bridge.cases import (
    CASE_SUFFIXES,
    ImageReadError,
    case_image_limits,
    convert_case_image,
    is_case_file,
)
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


#: The columns a labels CSV may have.
LABEL_COLUMNS = ("filename", "label", "split")


@dataclass
class CaseFacts:
    """What a labels CSV says about one file."""

    label: int | None = None
    split: str | None = None


@dataclass(frozen=True)
class IncomingFile:
    """A file offered for import: its name, its size, and how to read its bytes (read only once its size has
    been checked)."""

    name: str
    size: int
    read: Callable[[], bytes]

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> IncomingFile:
        return cls(name=name, size=len(data), read=lambda: data)


@dataclass
class ImportReport:
    imported: list[Case] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason): unreadable or refused
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason): imported before

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Every file not imported, with the reason."""
        return self.refused + self.duplicates


def case_read_labels_csv(data: bytes) -> dict[str, CaseFacts]:
    """Parse a labels CSV with a ``filename`` column and optional ``label`` (0/1) and ``split`` columns.

    Raises ``ValidationError`` naming the line and the problem: not UTF-8, unknown or missing columns, a
    label or split that is not one of the known values, an empty or repeated file name.
    """
    if len(data) > settings.CASE_LABELS_MAX_BYTES:
        raise ValidationError(
            f"The labels CSV is {len(data):,} bytes; at most {settings.CASE_LABELS_MAX_BYTES:,} are read."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValidationError(
            f"The labels CSV is not UTF-8 text (line {line} has the byte 0x{data[error.start]:02x}; "
            "Latin-1 or Windows encodings are not read): save it as UTF-8."
        ) from None
    if "\x00" in text:
        raise ValidationError("The labels CSV holds NUL characters; it is not a text file.")
    try:
        return _labels_from_rows(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise ValidationError(f"The labels CSV cannot be read as CSV: {error}.") from None


def case_labels_from_upload(upload: UploadedFile) -> dict[str, CaseFacts]:
    """An uploaded labels CSV, parsed (its size is checked before it is read)."""
    if (upload.size or 0) > settings.CASE_LABELS_MAX_BYTES:
        raise ValidationError(
            f"The labels CSV is {upload.size:,} bytes; at most {settings.CASE_LABELS_MAX_BYTES:,} are read."
        )
    return case_read_labels_csv(upload.read())


def case_incoming_upload(upload: UploadedFile) -> IncomingFile:
    """An uploaded case file, read only once its size has been checked."""
    return IncomingFile(name=upload.name or "unnamed file", size=upload.size or 0, read=upload.read)


def _labels_from_rows(rows: Iterator[list[str]]) -> dict[str, CaseFacts]:
    header = [column.strip().lower() for column in next(rows, [])]
    unknown = [column for column in header if column not in LABEL_COLUMNS]
    if "filename" not in header or unknown or len(set(header)) != len(header):
        found = ", ".join(repr(column) for column in header) or "none"
        raise ValidationError(
            f"The labels CSV needs a 'filename' column and optionally 'label' and 'split', each once and no "
            f"others; its columns are {found}."
        )
    facts: dict[str, CaseFacts] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValidationError(f"Labels CSV line {line}: {len(row)} cells for {len(header)} columns.")
        values = dict(zip(header, (cell.strip() for cell in row), strict=True))
        name = Path(values["filename"].replace("\\", "/")).name
        if not name:
            raise ValidationError(f"Labels CSV line {line}: the filename is empty.")
        label_word = values.get("label", "").lower()
        if label_word not in LABEL_WORDS:
            raise ValidationError(f"Labels CSV line {line}: label {values['label']!r} is not 0/1.")
        split = values.get("split", "").lower() or None
        if split is not None and split not in Case.Split.values:
            raise ValidationError(
                f"Labels CSV line {line}: split {split!r} is not one of {', '.join(Case.Split.values)}."
            )
        if name in facts:
            raise ValidationError(f"Labels CSV line {line}: {name} is named a second time.")
        facts[name] = CaseFacts(label=LABEL_WORDS[label_word], split=split)
    return facts


def _incoming(item: IncomingFile | tuple[str, bytes]) -> IncomingFile:
    return item if isinstance(item, IncomingFile) else IncomingFile.of_bytes(*item)


def _display_name(filename: str) -> str:
    """The file's own name, whatever folders (``/`` or ``\\``) an archive or a browser put before it."""
    return Path(filename.replace("\\", "/")).name


@transaction.atomic
def case_import_files(
    *,
    study: Study,
    files: Iterable[IncomingFile | tuple[str, bytes]],
    split: str = Case.Split.HELDOUT,
    labels: dict[str, CaseFacts] | None = None,
    created_by: AbstractBaseUser | None = None,
    queue_projections: bool = True,
) -> ImportReport:
    """Convert and store each file (an ``IncomingFile`` or ``(file name, bytes)``) as a case of ``study`` and
    queue its projection.

    A labels CSV that names a file not in ``files`` refuses the whole import (``ValidationError``). A file that
    is empty, too large, unreadable, of a size or shape outside the limits, or a DICOM with burnt-in text is
    refused with the reason, and one imported before is skipped; nothing of either is stored. DICOM is
    de-identified before anything of it is written.
    """
    if split not in Case.Split.values:
        raise ValidationError(f"Unknown split {split!r}.")
    if not study.resolution:
        raise ValidationError("The study has no resolution; it was not validated.")
    incoming = [_incoming(item) for item in files]
    labels = labels or {}
    missing = sorted(set(labels) - {_display_name(item.name) for item in incoming})
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValidationError(
            f"The labels CSV names {len(missing)} file(s) that are not in this import: {shown}. Nothing was "
            "imported; add the files or remove their lines."
        )
    report = ImportReport()
    written: list[str] = []
    seen: set[str] = set()  # the digests of the files imported so far
    limits = case_image_limits()
    try:
        for item in incoming:
            name = _display_name(item.name)
            data, reason = _read_checked(item, name)
            if reason:
                report.refused.append((name, reason))
                continue
            digest = bytes_sha256(data)
            duplicate = _duplicate_of(study=study, digest=digest, seen=seen)
            if duplicate:
                report.duplicates.append((name, duplicate))
                continue
            try:
                converted = convert_case_image(data, filename=name, size=study.resolution, limits=limits)
            except ImageReadError as error:
                report.refused.append((name, str(error)))
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
            seen.add(digest)
        if queue_projections and report.imported:
            projection_queue(cases=report.imported, created_by=created_by)
    except BaseException:
        delete_media(written)
        raise
    return report


def _read_checked(item: IncomingFile, name: str) -> tuple[bytes, str]:
    """The file's bytes, or the reason it is refused (checked from its size before it is read)."""
    if item.size <= 0:
        return b"", "the file is empty"
    if item.size > settings.CASE_UPLOAD_MAX_BYTES:
        return b"", (
            f"the file is {item.size:,} bytes, larger than the {settings.CASE_UPLOAD_MAX_BYTES:,} allowed"
        )
    try:
        data = item.read()
    except Exception as error:  # noqa: BLE001 - bad CRC, encrypted or unsupported zip entries, I/O errors
        return b"", f"the file cannot be read: {error}"
    if len(data) != item.size:
        return b"", f"the file holds {len(data):,} bytes, not the {item.size:,} it declared"
    if not is_case_file(data, name):
        return b"", f"unsupported file type {Path(name).suffix.lower()} (use PNG, JPEG, TIFF, BMP or DICOM)"
    return data, ""


def _duplicate_of(*, study: Study, digest: str, seen: set[str]) -> str:
    if digest in seen:
        return "the same file is in this import twice"
    existing = Case.objects.filter(study=study, source_sha256=digest).first()
    if existing is not None:
        return f"already imported as case {existing.pk} ({existing.original_filename})"
    return ""


def _zip_members(archive: zipfile.ZipFile, source: Path) -> list[zipfile.ZipInfo]:
    """The archive's entries, after checking what they declare (count, sizes, compression ratio) against the
    settings before any of them is decompressed."""
    members = archive.infolist()
    if len(members) > settings.CASE_ZIP_MAX_MEMBERS:
        raise ValidationError(
            f"{source.name} has {len(members):,} entries; at most {settings.CASE_ZIP_MAX_MEMBERS:,} are read."
        )
    total = sum(info.file_size for info in members)
    if total > settings.CASE_ZIP_MAX_TOTAL_BYTES:
        raise ValidationError(
            f"{source.name} declares {total:,} bytes uncompressed; at most "
            f"{settings.CASE_ZIP_MAX_TOTAL_BYTES:,} are read. Nothing was imported."
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_FLOOR and ratio > settings.CASE_ZIP_MAX_RATIO:
            raise ValidationError(
                f"{source.name}: {info.filename} would expand {ratio:,.0f} times ({info.compress_size:,} to "
                f"{info.file_size:,} bytes), more than the {settings.CASE_ZIP_MAX_RATIO} allowed: it looks "
                "like a zip bomb. Nothing was imported."
            )
    return members


#: Entries up to this size may compress better than ``CASE_ZIP_MAX_RATIO`` (a labels CSV, a blank image).
ZIP_RATIO_FLOOR = 1024 * 1024


def iter_folder_files(path: Path) -> list[IncomingFile]:
    """The image and DICOM files in a folder (recursively) or a zip archive, each read only when imported.

    A zip archive's declared entry count, sizes and compression ratios are checked first (``ValidationError``).
    """
    suffixes = CASE_SUFFIXES
    if zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ValidationError(f"{path.name} is not a readable zip archive: {error}") from None
        with archive:
            members = _zip_members(archive, path)
        found = []
        for info in sorted(members, key=lambda i: i.filename):
            name = _display_name(info.filename)
            if not info.is_dir() and Path(name).suffix.lower() in suffixes and not name.startswith("."):
                found.append(IncomingFile(name=name, size=info.file_size, read=_zip_reader(path, info)))
        return found
    return [
        IncomingFile(name=file.name, size=file.stat().st_size, read=file.read_bytes)
        for file in sorted(path.rglob("*"))
        if file.is_file() and file.suffix.lower() in suffixes and not file.name.startswith(".")
    ]


def _zip_reader(path: Path, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(path) as archive, archive.open(info) as member:
            return member.read(info.file_size + 1)  # never more than it declared (and one byte to notice)

    return read


def labels_from_archive(path: Path, csv_name: str = "labels.csv") -> bytes | None:
    """The labels CSV inside a folder or zip archive, if there is one."""
    limit = settings.CASE_LABELS_MAX_BYTES
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                for info in _zip_members(archive, path):
                    if _display_name(info.filename) == csv_name and not info.is_dir():
                        if info.file_size > limit:
                            raise ValidationError(
                                f"{info.filename} is {info.file_size:,} bytes; at most {limit:,} are read."
                            )
                        with archive.open(info) as member:
                            return member.read(limit + 1)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            zlib.error,
            RuntimeError,
            NotImplementedError,
        ) as error:
            raise ValidationError(f"{path.name}: the labels CSV cannot be read: {error}") from None
        return None
    candidate = path / csv_name
    return read_labels_file(candidate) if candidate.is_file() else None


def read_labels_file(path: Path) -> bytes:
    """A labels CSV on disk, refused (``ValidationError``) when larger than ``CASE_LABELS_MAX_BYTES``."""
    limit = settings.CASE_LABELS_MAX_BYTES
    try:
        size = path.stat().st_size
        if size > limit:
            raise ValidationError(f"{path.name} is {size:,} bytes; at most {limit:,} are read.")
        return path.read_bytes()
    except OSError as error:
        raise ValidationError(f"{path} cannot be read: {error.strerror or error}") from None
