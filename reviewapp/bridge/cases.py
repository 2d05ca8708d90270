"""Case images: which uploads are radiographs, converting them for a study, reading the stored PNG back.

A case is stored as the study's ``size`` x ``size`` 8-bit greyscale PNG (the one image every step reads) and
its source file (DICOM de-identified).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from PIL import Image

from explain_engine import images as engine_images
from explain_engine.images import DICOM_SUFFIXES, IMAGE_SUFFIXES, ImageLimits, ImageReadError
from reviewapp.bridge.files import bytes_sha256, media_path, png_bytes
from reviewapp.deidentify import deidentified_dicom_bytes, dicom_facts

__all__ = [
    "CASE_SUFFIXES",
    "CaseImage",
    "ImageLimits",
    "ImageReadError",
    "case_image_limits",
    "case_pixels",
    "case_tensor",
    "convert_case_image",
    "is_dicom",
    "stored_case_image",
    "write_demo_cases",
]

#: The file name suffixes of case images: the images and DICOM files the engine reads.
CASE_SUFFIXES = frozenset(IMAGE_SUFFIXES | DICOM_SUFFIXES)


def is_dicom(data: bytes, filename: str = "") -> bool:
    """A DICOM file: the ``DICM`` preamble marker, or a DICOM suffix."""
    return data[128:132] == b"DICM" or Path(filename).suffix.lower() in DICOM_SUFFIXES


def is_case_file(data: bytes, filename: str) -> bool:
    """A file import may try to read: a known suffix, no suffix, or a DICOM file under any name."""
    suffix = Path(filename).suffix.lower()
    return not suffix or suffix in CASE_SUFFIXES or is_dicom(data, filename)


@dataclass
class CaseImage:
    """An uploaded radiograph converted for a study: the PNG to store, the source to keep, and facts."""

    png: bytes
    size: int
    source: bytes
    source_suffix: str
    source_format: str
    bits: int
    metadata: dict

    @property
    def png_sha256(self) -> str:
        return bytes_sha256(self.png)


def case_image_limits() -> ImageLimits:
    """The limits on a case image's declared size, from the settings ``CASE_IMAGE_MAX_PIXELS``,
    ``CASE_IMAGE_MIN_SIDE`` and ``CASE_IMAGE_MAX_ASPECT_RATIO``."""
    return ImageLimits(
        max_pixels=settings.CASE_IMAGE_MAX_PIXELS,
        min_side=settings.CASE_IMAGE_MIN_SIDE,
        max_aspect=settings.CASE_IMAGE_MAX_ASPECT_RATIO,
    )


def convert_case_image(
    data: bytes, *, filename: str, size: int, limits: ImageLimits | None = None
) -> CaseImage:
    """Read PNG/JPEG/TIFF/BMP (8/16-bit) or DICOM bytes and make the study's ``size`` x ``size`` greyscale PNG.

    The declared size is checked against ``limits`` (default: :func:`case_image_limits`) before any pixel is
    decoded. An image whose pixels are all equal is refused, and so is a DICOM file that says text is burnt
    into its pixels; other DICOM files are de-identified here, before anything of them is returned. Raises
    ``ImageReadError`` with the reason.
    """
    limits = limits or case_image_limits()
    if is_dicom(data, filename):
        radiograph, dataset = engine_images.read_dicom(data, limits=limits)
        burned_in = str(getattr(dataset, "BurnedInAnnotation", "") or "").strip().upper()
        if burned_in == "YES":
            raise ImageReadError(
                "the DICOM says BurnedInAnnotation = YES: text burnt into the pixels may identify the patient "
                "and cannot be removed by de-identification; remove it (or export the image without it) first"
            )
        try:
            source = deidentified_dicom_bytes(dataset)
            metadata = {"format": "dicom", **dicom_facts(dataset)}
        except Exception as exc:  # noqa: BLE001 - a malformed element that pydicom cannot rewrite
            raise ImageReadError(f"the DICOM file cannot be de-identified: {str(exc)[:200]}") from None
        suffix = ".dcm"
    else:
        radiograph = engine_images.read_radiograph(data, filename=filename, limits=limits)
        source = data
        height, width = radiograph.pixels.shape
        metadata = {
            "format": radiograph.source_format,
            "bits": radiograph.bits,
            "rows": height,
            "columns": width,
        }
        suffix = _SOURCE_SUFFIXES.get(radiograph.source_format, Path(filename).suffix.lower() or ".img")
    if radiograph.pixels.size and float(radiograph.pixels.min()) == float(radiograph.pixels.max()):
        raise ImageReadError("every pixel of the image has the same value: it holds no radiograph")
    pixels = engine_images.resize_square(radiograph.pixels, size)
    png = png_bytes(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    return CaseImage(
        png=png,
        size=size,
        source=source,
        source_suffix=suffix,
        source_format=radiograph.source_format,
        bits=radiograph.bits,
        metadata=metadata,
    )


#: The stored source file's suffix follows its content, not the name it was uploaded under.
_SOURCE_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp"}


def stored_case_image(case) -> np.ndarray:
    """The case's stored PNG as uint8 [H, W]: the one way every step reads a case."""
    with Image.open(media_path(case.image.name)) as image:
        return np.asarray(image.convert("L"))


def case_pixels(case) -> np.ndarray:
    """The case's stored PNG as float32 [H, W] in [0, 1]."""
    return (stored_case_image(case).astype(np.float64) / 255.0).astype(np.float32)


def case_tensor(cases: Sequence, *, channels: int) -> torch.Tensor:
    """The stored PNGs of ``cases`` as the generator's input [N, C, H, W] in [-1, 1] (on the CPU)."""
    return engine_images.to_tensor([case_pixels(case) for case in cases], channels=channels)


def write_demo_cases(folder: str | Path, *, heldout: int, review: int, size: int) -> None:
    """Write the demo's phantom cases into ``folder`` with a ``labels.csv`` (columns filename, label, split)."""
    from explain_engine.demo.cases import make_demo_cases  # the demo's phantom code, only when seeding

    make_demo_cases(folder, heldout=heldout, review=review, size=size)
