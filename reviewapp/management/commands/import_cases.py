"""``manage.py import_cases STUDY PATH``: import a folder or zip archive of radiographs into a study."""

from __future__ import annotations

import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.models import Case, Study
from reviewapp.services.cases import (
    case_import_files,
    case_read_labels_csv,
    iter_folder_files,
    labels_from_archive,
    read_labels_file,
)


class Command(BaseCommand):
    help = (
        "Import PNG/JPEG/DICOM files from a folder (searched recursively) or a zip archive into a study, with "
        "labels and splits from a CSV (columns filename, label, split; labels.csv inside PATH is used when "
        "--labels is not given). Each new case gets a projection job. Exits with status 1 when a file was "
        "refused (the others are imported)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="Study name or id.")
        parser.add_argument("path", type=Path, help="Folder or .zip archive.")
        parser.add_argument("--labels", type=Path, help="Labels CSV (filename,label,split).")
        parser.add_argument(
            "--split",
            choices=Case.Split.values,
            default=Case.Split.HELDOUT,
            help="Split of files the CSV omits.",
        )
        parser.add_argument("--no-projection", action="store_true", help="Do not queue projections.")

    def handle(self, *args, study: str, path: Path, labels: Path | None, split: str, **options) -> None:
        if study.isdigit():  # an id (one longer than a database integer names no study)
            target = Study.objects.filter(pk=int(study)).first() if len(study) < 19 else None
        else:
            target = Study.objects.filter(name=study).first()
        if target is None:
            raise CommandError(f"No study {study!r}.")
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        if path.is_file() and not zipfile.is_zipfile(path):
            raise CommandError(f"{path} is neither a folder nor a zip archive.")
        try:
            csv_bytes = read_labels_file(labels) if labels else labels_from_archive(path)
            facts = case_read_labels_csv(csv_bytes) if csv_bytes is not None else None
            report = case_import_files(
                study=target,
                files=iter_folder_files(path),
                split=split,
                labels=facts,
                queue_projections=not options["no_projection"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        for name, reason in report.skipped:
            self.stderr.write(f"skipped {name}: {reason}")
        summary = f"Imported {len(report.imported)} case(s) into {target.name}"
        if report.duplicates:
            summary += f"; {len(report.duplicates)} imported before"
        if report.refused:
            self.stdout.write(summary + ".")
            raise CommandError(
                f"{len(report.refused)} file(s) were refused (listed above with the reason); nothing of them "
                "was stored."
            )
        self.stdout.write(self.style.SUCCESS(summary + "."))
