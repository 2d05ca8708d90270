"""Case images: which uploads are radiographs, converting them for a study, reading the stored PNG back.

A case is stored as the study's ``size`` x ``size`` 8-bit greyscale PNG (the one image every step reads) and
its source file (DICOM de-identified).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    "case_source_pixels",
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


#: Longest side of the source pixels sent to the reading screen (larger films are resampled to it).
SOURCE_MAX_SIDE = 1024


@dataclass
class SourcePixels:
    """A case's source pixels for window/level in the browser: ``values`` (uint16, centre-cropped to the
    square the study's PNG shows) stand for ``values * slope + intercept`` source units.

    ``low`` and ``high`` are the source values the stored 8-bit PNG maps to 0 and 255 (the generated images
    are 8-bit on that scale); ``windows`` are the file's own window (centre, width) pairs (DICOM), first to
    show; ``invert`` is set for DICOM MONOCHROME1 (bright = low values).
    """

    values: np.ndarray
    slope: float
    intercept: float
    low: float
    high: float
    bits: int
    source_format: str
    windows: list[dict] = field(default_factory=list)
    invert: bool = False

    def info(self) -> dict:
        height, width = self.values.shape
        return {
            "width": width,
            "height": height,
            "slope": self.slope,
            "intercept": self.intercept,
            "low": self.low,
            "high": self.high,
            "bits": self.bits,
            "format": self.source_format,
            "windows": self.windows,
            "invert": self.invert,
        }


def _square(values: np.ndarray, max_side: int) -> np.ndarray:
    height, width = values.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = values[top : top + side, left : left + side].astype(np.float32)
    if side > max_side:
        resized = Image.fromarray(crop, mode="F").resize((max_side, max_side), Image.Resampling.BOX)
        crop = np.asarray(resized, dtype=np.float32)
    return crop


def _as_uint16(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Values as uint16 with (slope, intercept) such that values ~= uint16 * slope + intercept."""
    lo, hi = float(values.min()), float(values.max())
    slope = 1.0 if hi - lo <= 65535 else (hi - lo) / 65535.0
    stored = np.clip(np.round((values - lo) / slope), 0, 65535).astype(np.uint16)
    return stored, slope, lo


def _dicom_windows(ds) -> list[dict]:
    centres, widths = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if centres is None or widths is None:
        return []

    def many(value) -> list[float]:
        try:
            return [float(v) for v in value]
        except TypeError:
            return [float(value)]

    explanations = getattr(ds, "WindowCenterWidthExplanation", None)
    names = [str(e) for e in explanations] if isinstance(explanations, list | tuple) else []
    if explanations is not None and not names:
        names = [str(explanations)]
    windows = []
    for i, (centre, width) in enumerate(zip(many(centres), many(widths), strict=False)):
        if width > 0:
            name = names[i] if i < len(names) and names[i] else f"DICOM window {i + 1}"
            windows.append({"name": name, "center": centre, "width": width})
    return windows


def case_source_pixels(case, *, max_side: int = SOURCE_MAX_SIDE) -> SourcePixels | None:
    """The pixels of the case's source file for windowing (16-bit PNG/TIFF or DICOM keep their depth); None
    when the case keeps no readable source file."""
    if not case.source_file:
        return None
    try:
        data = media_path(case.source_file.name).read_bytes()
    except OSError:
        return None
    if is_dicom(data, case.source_file.name):
        return _dicom_source(data, max_side)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                values = np.asarray(image, dtype=np.float64)
                full = 65535.0 if values.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
                bits = 16
            else:
                values = np.asarray(image.convert("L"), dtype=np.float64)
                full, bits = 255.0, 8
            source_format = (image.format or "image").lower()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds of errors for broken files
        return None
    stored, slope, intercept = _as_uint16(_square(values, max_side))
    return SourcePixels(stored, slope, intercept, 0.0, full, bits, source_format)


def _dicom_source(data: bytes, max_side: int) -> SourcePixels | None:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        raw = ds.pixel_array
    except Exception:  # noqa: BLE001 - pydicom raises many kinds of errors for broken files
        return None
    if raw.ndim != 2:
        return None
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    windows = _dicom_windows(ds)
    low, high = float(values.min()), float(values.max())
    if windows:  # the stored PNG was made through the file's first window
        low = max(low, windows[0]["center"] - windows[0]["width"] / 2)
        high = min(high, windows[0]["center"] + windows[0]["width"] / 2)
    stored, slope, intercept = _as_uint16(_square(values, max_side))
    invert = str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1"
    bits = int(getattr(ds, "BitsStored", 16))
    return SourcePixels(stored, slope, intercept, low, high, bits, "dicom", windows, invert)


def write_demo_cases(folder: str | Path, *, heldout: int, review: int, size: int) -> None:
    """Write the demo's phantom cases into ``folder`` with a ``labels.csv`` (columns filename, label, split)."""
    from explain_engine.demo.cases import make_demo_cases  # the demo's phantom code, only when seeding

    make_demo_cases(folder, heldout=heldout, review=review, size=size)
