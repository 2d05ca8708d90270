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
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom"}


class ImageReadError(ValueError):
    """The file is not an image this tool can read; the message says why."""


#: The raster formats read (by their content, whatever the file name says); Pillow's other readers (EPS, PSD,
#: ICO, GIF, ...) are never tried.
PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")


@dataclass(frozen=True)
class ImageLimits:
    """What a radiograph file may declare, checked from its header before any pixel is decoded.

    The defaults are the command line's; the web app passes its own (``CASE_IMAGE_*`` settings, with a larger
    shorter side).

    Attributes:
        max_pixels: width x height at most (a 12000 x 12000 header in an 800-byte file is refused before it
            is decompressed).
        min_side: the shorter side at least this many pixels (a 1 x 1 image holds no radiograph).
        max_aspect: the longer side at most this many times the shorter (a 4000 x 10 strip is not a chest).
    """

    max_pixels: int = 50_000_000
    min_side: int = 8
    max_aspect: float = 3.0

    def check(self, width: int, height: int) -> None:
        """Raise ``ImageReadError`` saying which limit a ``width`` x ``height`` image breaks."""
        if width < 1 or height < 1:
            raise ImageReadError(f"the image declares a size of {width} x {height} pixels")
        if width * height > self.max_pixels:
            raise ImageReadError(
                f"the image declares {width} x {height} pixels ({width * height:,}), more than the "
                f"{self.max_pixels:,} allowed"
            )
        if min(width, height) < self.min_side:
            raise ImageReadError(
                f"the image is {width} x {height} pixels; its shorter side must be at least {self.min_side}"
            )
        if max(width, height) > self.max_aspect * min(width, height):
            raise ImageReadError(
                f"the image is {width} x {height} pixels; its longer side may be at most {self.max_aspect:g} "
                "times its shorter side"
            )


DEFAULT_LIMITS = ImageLimits()


@dataclass
class Radiograph:
    pixels: np.ndarray  # float32 [H, W] in [0, 1], bright = dense
    source_format: str  # "png", "jpeg", "dicom", ...
    bits: int  # bit depth of the stored pixels
    metadata: dict = field(default_factory=dict)  # non-identifying facts (modality, view, photometric, ...)


def _grey(img: Image.Image) -> Image.Image:
    """An 8-bit greyscale image: colour by luminance (CMYK through RGB), transparency over black (air)."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    if img.mode == "CMYK":
        img = img.convert("RGB")
    return img.convert("L")


def _from_pil(img: Image.Image, fmt: str) -> Radiograph:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float32)
        bits = 16
        maxval = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        arr = arr / maxval
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ImageReadError("the floating-point image holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        bits = 32
    else:
        arr = np.asarray(_grey(img), dtype=np.float32) / 255.0
        bits = 8
    return Radiograph(np.clip(arr, 0, 1).astype(np.float32), fmt, bits, {"mode": mode})


def _dicom_transfer_syntax(ds) -> str:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None:
        return "an undeclared transfer syntax"
    name = getattr(uid, "name", "") or ""
    return f"transfer syntax {uid}" + (f" ({name})" if name and name != str(uid) else "")


def read_dicom(
    data: bytes | str | os.PathLike, *, limits: ImageLimits = DEFAULT_LIMITS
) -> tuple[Radiograph, object]:
    """A DICOM file -> (radiograph, pydicom dataset). Applies the modality LUT and the VOI LUT/window, and
    inverts MONOCHROME1 so that bright = dense. The declared size is checked against ``limits`` before the
    pixel data is decoded."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data, force=False)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds of errors for broken files
        raise ImageReadError(f"not a readable DICOM file: {_short(exc)}") from None
    try:
        has_pixels = any(keyword in ds for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
        if not has_pixels:
            raise ImageReadError("the DICOM file holds no pixel data (no image to import)")
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed header element
        raise ImageReadError(f"not a readable DICOM image: {_short(exc)}") from None
    if frames != 1 or samples != 1:
        raise ImageReadError(
            f"the DICOM image has {frames} frame(s) of {samples} sample(s) per pixel; only single-frame "
            "greyscale is supported"
        )
    limits.check(columns, rows)
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as exc:
        raise ImageReadError(
            f"the DICOM pixel data in {_dicom_transfer_syntax(ds)} cannot be decoded here: {_short(exc)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds of errors for broken files
        raise ImageReadError(f"not a readable DICOM image: {_short(exc)}") from None
    if arr.ndim != 2:
        raise ImageReadError(
            f"DICOM pixel data has shape {arr.shape}; only single-frame greyscale is supported"
        )
    try:
        arr = apply_modality_lut(arr, ds)
        arr = apply_voi_lut(arr, ds) if ("WindowCenter" in ds or "VOILUTSequence" in ds) else arr
    except Exception as exc:  # noqa: BLE001 - malformed LUT or window elements
        raise ImageReadError(f"the DICOM's modality or VOI LUT cannot be applied: {_short(exc)}") from None
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ImageReadError("the DICOM pixel data holds NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        arr = 1.0 - arr
    meta = {
        "photometric": photometric,
        "modality": str(getattr(ds, "Modality", "")),
        "view_position": str(getattr(ds, "ViewPosition", "")),
        "rows": rows,
        "columns": columns,
    }
    return Radiograph(arr.astype(np.float32), "dicom", int(getattr(ds, "BitsStored", 16)), meta), ds


def _short(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), without object reprs of in-memory files."""
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"<_io\.\w+ object at 0x[0-9a-f]+>", "the file", text)


def read_radiograph(
    data: bytes | str | os.PathLike, *, filename: str | None = None, limits: ImageLimits = DEFAULT_LIMITS
) -> Radiograph:
    """Read PNG/JPEG/TIFF/BMP (8- or 16-bit) or DICOM from a path or bytes into a [0, 1] greyscale array.

    The image's declared size is checked against ``limits`` before its pixels are decoded. Raises
    ``ImageReadError`` saying why a file cannot be read (naming the file when ``data`` is a path).
    """
    if isinstance(data, bytes):
        return _read_radiograph_bytes(data, filename or "", limits)
    path = Path(data)
    try:
        return _read_radiograph_bytes(path.read_bytes(), filename or path.name, limits)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from None


def _read_radiograph_bytes(raw: bytes, name: str, limits: ImageLimits) -> Radiograph:
    suffix = Path(name).suffix.lower()
    if not raw:
        raise ImageReadError("the file is empty")
    if suffix in DICOM_SUFFIXES or raw[128:132] == b"DICM":
        return read_dicom(raw, limits=limits)[0]
    try:
        img = Image.open(io.BytesIO(raw), formats=PIL_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"the image declares too many pixels: {_short(exc)}") from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"not a PNG, JPEG, TIFF or BMP image ({suffix or 'no suffix'}; its content is not an image "
            "of those formats)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds of errors for broken files
        raise ImageReadError(f"not a readable image ({suffix or 'unknown type'}): {_short(exc)}") from None
    with img:
        width, height = img.size
        limits.check(width, height)
        try:
            frames = int(getattr(img, "n_frames", 1))
            if frames != 1:
                raise ImageReadError(f"the image holds {frames} frames; only single images are read")
            img.load()
            return _from_pil(img, (img.format or suffix.lstrip(".")).lower())
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds of errors for broken files
            raise ImageReadError(
                f"not a readable image ({suffix or 'unknown type'}): {_short(exc)}"
            ) from None


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
