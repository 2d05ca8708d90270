"""``manage.py seed_demo``: the demo study from the shipped demo checkpoints and generated phantom cases."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.bridge.cases import write_demo_cases
from reviewapp.bridge.models import demo_classifier_path
from reviewapp.demo import demo_logins
from reviewapp.models import Study
from reviewapp.selectors.users import ADMINS_GROUP
from reviewapp.services.cases import case_import_files, case_read_labels_csv, iter_folder_files

DEMO_GENERATOR = Path(settings.BASE_DIR) / "explain_engine" / "assets" / "demo" / "generator.pt"
DEMO_AUTOENCODER = DEMO_GENERATOR.with_name("autoencoder.pt")
DEMO_STUDY_NAME = "Demo: pneumonia phantoms"


class Command(BaseCommand):
    help = (
        "Register the demo study (demo StyleGAN2 and classifier), import generated phantom cases, create the "
        "demo log-ins, and queue the style ranges and the projections."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=DEMO_STUDY_NAME)
        parser.add_argument(
            "--generator", default=str(DEMO_GENERATOR), help="Generator + discriminator file."
        )
        parser.add_argument("--classifier", default="demo", help="Classifier path or built-in name.")
        parser.add_argument("--heldout", type=int, default=200, help="Held-out cases (swept).")
        parser.add_argument("--review", type=int, default=20, help="Cases of the review split.")
        parser.add_argument(
            "--steps", type=int, default=200, help="Projection steps (the paper's 500 take long on a CPU)."
        )
        parser.add_argument("--batch", type=int, default=16, help="Cases per projection job.")
        parser.add_argument("--ranges-samples", type=int, default=100_000)
        parser.add_argument("--no-logins", action="store_true", help="Do not create the demo log-ins.")

    def handle(self, *args, **options) -> None:
        from reviewapp.services.studies import study_create

        if Study.objects.filter(name=options["name"]).exists():
            self.stdout.write(f"The study {options['name']!r} exists already; nothing to do.")
            return
        if options["classifier"] == "demo" and not demo_classifier_path().exists():
            self.stderr.write(
                f"The demo classifier is not there yet ({demo_classifier_path()}); run seed_demo again when it is."
            )
            return
        if not Path(options["generator"]).exists():
            raise CommandError(f"The demo generator is missing: {options['generator']}")
        logins = {} if options["no_logins"] else demo_logins()
        admin = _demo_admin(logins)
        self.stdout.write("Registering the demo study (loading its models)…")
        try:
            study = study_create(
                name=options["name"],
                generator_path=str(Path(options["generator"]).resolve()),
                classifier_source=options["classifier"],
                target_label="Pneumonia",
                ranges_samples=options["ranges_samples"],
                projection_steps=options["steps"],
                projection_batch_size=options["batch"],
                # The demo autoencoder fits the demo generator's images only.
                autoencoder_path=str(DEMO_AUTOENCODER)
                if Path(options["generator"]).resolve() == DEMO_GENERATOR.resolve()
                and DEMO_AUTOENCODER.exists()
                else "",
                notes=(
                    "Procedural chest radiograph phantoms with a planted pneumonia-like opacity and a planted "
                    f"shortcut. Projections use {options['steps']} steps (the paper: 500) to keep the demo quick."
                ),
                created_by=admin,
            )
        except Exception as error:  # noqa: BLE001 - the demo must not stop the server from starting
            raise CommandError(f"The demo study could not be registered: {error}") from None
        total = options["heldout"] + options["review"]
        size = max(study.resolution, settings.CASE_IMAGE_MIN_SIDE)  # the import refuses smaller images
        self.stdout.write(f"Generating {total} phantom cases at {size}×{size}…")
        with tempfile.TemporaryDirectory() as folder:
            write_demo_cases(folder, heldout=options["heldout"], review=options["review"], size=size)
            labels = case_read_labels_csv((Path(folder) / "labels.csv").read_bytes())
            report = case_import_files(
                study=study, files=iter_folder_files(Path(folder)), labels=labels, created_by=admin
            )
        for name, reason in report.skipped:
            self.stderr.write(f"skipped {name}: {reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo study {study.name!r}: {len(report.imported)} cases imported; style ranges and "
                f"projections ({study.projection_steps} steps, {study.projection_batch_size} cases per job) queued."
            )
        )


def _demo_admin(logins: dict):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    for username, (role, _) in logins.items():
        if role == "admin":
            return User.objects.get(username=username)
    return User.objects.filter(groups__name=ADMINS_GROUP).order_by("pk").first()
