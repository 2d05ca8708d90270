"""Reading radiographs from files and writing images, difference maps and flicker GIFs.

Internally a radiograph is a float32 array [H, W] in [0, 1] with bright = dense (the usual display); the generator
and classifiers take tensors [N, C, H, W] in [-1, 1].
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom"}


class ImageReadError(ValueError):
    """The file is not an image this tool can read; the message says why."""


@dataclass
class Radiograph:
    pixels: np.ndarray  # float32 [H, W] in [0, 1], bright = dense
    source_format: str  # "png", "jpeg", "dicom", ...
    bits: int  # bit depth of the stored pixels
    metadata: dict = field(default_factory=dict)  # non-identifying facts (modality, view, photometric, ...)


def _from_pil(img: Image.Image, fmt: str) -> Radiograph:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        bits = 16
        maxval = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        arr = arr / maxval
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        bits = 32
    else:
        if mode not in ("L", "1"):
            img = img.convert("L")  # colour or palette: luminance
        arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
        bits = 8
    return Radiograph(np.clip(arr, 0, 1).astype(np.float32), fmt, bits, {"mode": mode})


def read_dicom(data: bytes | str | os.PathLike) -> tuple[Radiograph, object]:
    """A DICOM file -> (radiograph, pydicom dataset). Applies the modality LUT and the VOI LUT/window, and
    inverts MONOCHROME1 so that bright = dense."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data, force=False)
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds of errors for broken files
        raise ImageReadError(f"not a readable DICOM image: {exc}") from None
    if arr.ndim != 2:
        raise ImageReadError(
            f"DICOM pixel data has shape {arr.shape}; only single-frame greyscale is supported"
        )
    arr = apply_modality_lut(arr, ds)
    arr = apply_voi_lut(arr, ds) if ("WindowCenter" in ds or "VOILUTSequence" in ds) else arr
    arr = np.asarray(arr, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        arr = 1.0 - arr
    meta = {
        "photometric": photometric,
        "modality": str(getattr(ds, "Modality", "")),
        "view_position": str(getattr(ds, "ViewPosition", "")),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
    }
    return Radiograph(arr.astype(np.float32), "dicom", int(getattr(ds, "BitsStored", 16)), meta), ds


def read_radiograph(data: bytes | str | os.PathLike, *, filename: str | None = None) -> Radiograph:
    """Read PNG/JPEG/TIFF (8- or 16-bit) or DICOM from a path or bytes into a [0, 1] greyscale array."""
    name = filename or (str(data) if not isinstance(data, bytes) else "")
    suffix = Path(name).suffix.lower()
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    if suffix in DICOM_SUFFIXES or raw[128:132] == b"DICM":
        return read_dicom(raw)[0]
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return _from_pil(img, (img.format or suffix.lstrip(".")).lower())
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds of errors for broken files
        raise ImageReadError(f"not a readable image ({suffix or 'unknown type'}): {_reason(exc)}") from None


def _reason(error: Exception) -> str:
    """An error's message without the ``<_io.BytesIO object at 0x...>`` that Pillow names the file by."""
    text = re.sub(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>", "", str(error)).strip()
    return text or type(error).__name__


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` (antialiased), float32 [0, 1]."""
    h, w = pixels.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = pixels[top : top + side, left : left + side]
    if side == size:
        return crop.astype(np.float32)
    img = Image.fromarray(crop.astype(np.float32), mode="F").resize((size, size), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(img, dtype=np.float32), 0, 1)


def to_tensor(pixels: np.ndarray | list[np.ndarray], channels: int = 1) -> torch.Tensor:
    """[H, W] or a list of them in [0, 1] -> [N, C, H, W] in [-1, 1]."""
    arr = np.stack(pixels) if isinstance(pixels, list) else np.asarray(pixels)[None]
    x = torch.from_numpy(arr.astype(np.float32)).unsqueeze(1) * 2 - 1
    return x.repeat(1, channels, 1, 1) if channels > 1 else x


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image [C, H, W] or [H, W] in [-1, 1] -> uint8 [H, W] (channels averaged)."""
    x = (
        image.detach().float().cpu().numpy()
        if isinstance(image, torch.Tensor)
        else np.asarray(image, np.float32)
    )
    if x.ndim == 3:
        x = x.mean(0)
    return np.round(np.clip((x + 1) / 2, 0, 1) * 255).astype(np.uint8)


def save_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path, optimize=True)
    return path


def difference_heatmap(a: torch.Tensor, b: torch.Tensor, *, scale: float | None = None) -> np.ndarray:
    """Signed difference b - a of two images [C, H, W] in [-1, 1] as an RGB uint8 heatmap [H, W, 3]:
    red where b is brighter (denser), blue where darker, white where equal. ``scale``: the difference shown at
    full colour (default: the largest absolute difference, at least 0.02)."""
    d = (b.detach().float() - a.detach().float()).mean(0).cpu().numpy() / 2  # on the [0, 1] scale
    s = scale if scale is not None else max(float(np.abs(d).max()), 0.02)
    t = np.clip(d / s, -1, 1)
    rgb = np.ones(t.shape + (3,), np.float32)
    pos, neg = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    rgb[..., 1] -= pos + neg
    rgb[..., 2] -= pos
    rgb[..., 0] -= neg
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def save_flicker_gif(
    a: torch.Tensor,
    b: torch.Tensor,
    path: str | os.PathLike,
    *,
    frame_ms: int = 500,
    labels: tuple[str, str] | None = None,
) -> Path:
    """A looping two-frame GIF that flickers between image ``a`` (unmodified) and ``b`` (perturbed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.fromarray(to_uint8(x)).convert("L") for x in (a, b)]
    if labels:
        from PIL import ImageDraw

        for frame, text in zip(frames, labels, strict=True):
            ImageDraw.Draw(frame).text((2, 1), text, fill=255)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return path


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image and DICOM files directly in ``folder``, sorted by name."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | DICOM_SUFFIXES
    )
