"""A tiny study for app tests: a 16x16 StyleGAN2, a TorchScript classifier, generated cases.

The classifier's score follows the image's brightness, so clamping many style dimensions moves it and a sweep
selects dimensions with a small ``delta``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explain_engine.checkpoints import save_networks
from explain_engine.stylegan2 import Discriminator
from tests.helpers.tiny import TINY_D, tiny_generator


class Brightness(torch.nn.Module):
    """Probability of the target = sigmoid of the mean brightness, sharpened."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(8 * x.mean(dim=[1, 2, 3]))


def tiny_model_files(folder: Path) -> tuple[Path, Path]:
    """(generator + discriminator checkpoint, TorchScript classifier) written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    G = tiny_generator(seed=0)
    D = Discriminator(**TINY_D).eval()  # drawn right after G, from the same seed
    networks = save_networks(folder / "tiny-gan.pt", {"G_ema": G, "D": D})
    classifier = folder / "brightness.ts"
    torch.jit.script(Brightness()).save(str(classifier))
    return networks, classifier


def tiny_case_files(count: int, *, seed: int = 0, size: int = 16) -> list[tuple[str, bytes]]:
    """``count`` PNG files (name, bytes) of generator samples, larger than the study's resolution."""
    G = tiny_generator(seed=seed)
    with torch.no_grad():
        images = G.synthesize(G.mapping(torch.randn(count, 16)))
    files = []
    for i in range(count):
        pixels = np.round((images[i, 0].clamp(-1, 1).numpy() + 1) * 127.5).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((size * 2, size * 2)).save(buffer, format="PNG")
        files.append((f"case{i:03d}.png", buffer.getvalue()))
    return files


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def study_with_ranges(*, created_by, models: tuple[Path, Path], name: str = "Tiny study", **options):
    """Register a tiny study and estimate its style ranges in this process (no worker)."""
    from reviewapp.services.jobs import job_create, job_start
    from reviewapp.services.studies import study_create, study_estimate_ranges

    generator, classifier = models
    study = study_create(
        name=name,
        generator_path=str(generator),
        classifier_source=str(classifier),
        ranges_samples=500,
        projection_steps=options.pop("projection_steps", 20),
        projection_batch_size=options.pop("projection_batch_size", 4),
        created_by=created_by,
        estimate_ranges=False,
        **options,
    )
    job = job_create(kind="style ranges")
    job_start(job=job)
    study_estimate_ranges(study=study, job=job)
    study.refresh_from_db()
    return study


def registered_study(*, created_by, models: tuple[Path, Path], name: str = "Tiny study", **options):
    """A tiny study registered without its style ranges (its cases wait for them)."""
    from reviewapp.services.studies import study_create

    generator, classifier = models
    return study_create(
        name=name,
        generator_path=str(generator),
        classifier_source=str(classifier),
        ranges_samples=200,
        created_by=created_by,
        estimate_ranges=False,
        **options,
    )


def dicom_bytes(
    pixels: np.ndarray, *, photometric: str = "MONOCHROME2", patient_name: str = "Doe^Jane", window=None
) -> bytes:
    """A single-frame 16-bit DICOM radiograph with identifying tags, built with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    ds.PatientAddress = "1 Hospital Road"
    ds.OtherPatientIDs = "ALT-7"
    ds.InstitutionName = "St Example Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.AccessionNumber = "ACC123"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.Modality = "DX"
    ds.ViewPosition = "PA"
    referenced = Dataset()
    referenced.ReferringPhysicianName = "Nested^Name"
    ds.RequestAttributesSequence = Sequence([referenced])
    ds.add_new(0x00110010, "LO", "ACME private")
    ds.add_new(0x00111001, "LO", "patient tracking code")
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def tiny_lab_model_files(folder: Path) -> tuple[Path, Path]:
    """(generator + discriminator checkpoint, a 16x16 demo-architecture classifier with named blocks and a
    loss-estimator head) for the Counterfactual lab, whose Grad-CAM and DIP read classifier layers."""
    from explain_engine.classifiers import save_classifier
    from explain_engine.demo.classifier import DemoClassifier, DemoClassifierConfig

    networks, _ = tiny_model_files(folder)
    torch.manual_seed(0)
    config = DemoClassifierConfig(
        input_size=16, stem_channels=8, block_channels=(8, 8), channels_per_group=8, loss_head_width=8
    )
    classifier = save_classifier(folder / "tiny-demo-classifier.pt", DemoClassifier(config))
    return networks, classifier


def projected_cases(study, *, count: int = 1, created_by=None, seed: int = 0) -> list:
    """``count`` new cases of ``study`` with their projections, run in this process."""
    from reviewapp.models import Job, Projection
    from reviewapp.services.cases import case_import_files
    from reviewapp.tasks import projection_run_task

    report = case_import_files(study=study, files=tiny_case_files(count, seed=seed), created_by=created_by)
    for job in Job.objects.filter(kind="projection", status=Job.Status.PENDING):
        projection_run_task(
            job.pk, projection_pks=list(Projection.objects.filter(job=job).values_list("pk", flat=True))
        )
    return report.imported


def prepared_sweep(study, *, created_by=None, delta: float = 0.01):
    """A sweep of ``study`` launched and prepared (its units planned) in this process, not yet run."""
    from reviewapp.services.sweeps import sweep_launch
    from reviewapp.tasks import sweep_prepare_task

    sweep = sweep_launch(study=study, created_by=created_by, delta=delta)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    return sweep


#: Parameters that keep each method to a fraction of a second on the 16x16 models.
FAST_LAB_PARAMETERS = {
    "gradcam": {},
    "integrated_gradients": {"steps": 4},
    "gci": {"steps": 4, "bisection_steps": 1, "max_bracket_steps": 1, "path_frames": 3},
    "dip": {
        "pixel_warmup_steps": 3,
        "preimage_steps": 3,
        "counterfactual_steps": 4,
        "lr_rampup_steps": 0,
        "channels": [8, 8, 8, 8],
        "path_frames": 3,
    },
}
