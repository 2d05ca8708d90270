"""The lung-mask bank: the 517 real lung masks of the torchxrayvision wheel, cleaned, canonicalised and
cached, from which every phantom's lung fields are drawn.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull

from ...files import atomic_path

# Where the lung masks live inside the installed torchxrayvision package.
LUNG_MASK_ARCHIVE = Path("data") / "semantic_masks_v7labs_lungs.zip"

# Canonical frame the lung masks are normalised into: the bounding box of both lungs spans these
# normalised image coordinates before the per-phantom pose (scale, shift, rotation) is applied.
_CANON_X = (0.13, 0.87)
_CANON_Y = (0.085, 0.79)
# Resolution of the canonical mask bank; masks for other sizes are resampled from it.
_BANK_RES = 256
# Resolution (longest side) at which the raw masks are checked and cleaned.
_ANALYSIS_RES = 224


class LungMaskArchiveNotFoundError(FileNotFoundError):
    """The V7 Labs lung mask archive of the torchxrayvision package could not be found."""


# ----------------------------------------------------------------------------------------------------------
# Lung masks
# ----------------------------------------------------------------------------------------------------------


def lung_mask_zip_path() -> Path:
    """Path of ``semantic_masks_v7labs_lungs.zip`` inside the installed torchxrayvision package.

    The package is located without importing it (importing it would import torch).

    Raises:
        LungMaskArchiveNotFoundError: torchxrayvision is not installed or the archive is missing.
    """
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise LungMaskArchiveNotFoundError(
            "torchxrayvision is not installed; the phantoms need its lung mask archive "
            f"<site-packages>/torchxrayvision/{LUNG_MASK_ARCHIVE.as_posix()} (pip install torchxrayvision)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / LUNG_MASK_ARCHIVE


def _checked_zip_path(zip_path: str | os.PathLike | None) -> Path:
    path = Path(zip_path) if zip_path is not None else lung_mask_zip_path()
    if not path.is_file():
        raise LungMaskArchiveNotFoundError(
            f"lung mask archive not found at {path}; it ships with the torchxrayvision wheel as "
            f"torchxrayvision/{LUNG_MASK_ARCHIVE.as_posix()} (reinstall torchxrayvision)"
        )
    return path


def list_lung_mask_files(zip_path: str | os.PathLike | None = None) -> list[str]:
    """Names of the lung mask images in the archive (517 for torchxrayvision 1.x), sorted.

    Each entry is a single-channel PNG (whatever its file extension) of the original radiograph's size with
    both lungs painted non-zero.
    """
    with zipfile.ZipFile(_checked_zip_path(zip_path)) as archive:
        return sorted(name for name in archive.namelist() if not name.endswith("/"))


@dataclass(frozen=True)
class LungMaskBank:
    """Usable lung masks normalised to the canonical frame.

    Attributes:
        names: archive member name of each usable mask, ``[M]``.
        masks: ``[M, 2, R, R]`` uint8 soft masks (0..255) at ``R = 256``; channel 0 is the patient's right
            lung (image left), channel 1 the left lung. Both lungs together fill the canonical box.
        medial_x: ``[M, 2, R]`` float32, per row, the normalised x of the lung's medial border (the heart or
            mediastinum border); NaN where the lung has no pixel in that row.
        base_y: ``[M, 2, R]`` float32, per column, the normalised y of the lung's lowest pixel (the
            hemidiaphragm); NaN where the lung has no pixel in that column.
        boxes: ``[M, 2, 4]`` float32 per-lung bounding box ``(x0, x1, y0, y1)`` in normalised coordinates.
        n_archive: number of masks in the archive (usable or not).
    """

    names: tuple[str, ...]
    masks: np.ndarray
    medial_x: np.ndarray
    base_y: np.ndarray
    boxes: np.ndarray
    n_archive: int

    def __len__(self) -> int:
        return len(self.names)


def _clean_lung(lung: np.ndarray) -> np.ndarray | None:
    """Remove thin annotation strokes (arrows, lines drawn on the source figure) from one lung mask.

    Returns the cleaned mask, or None when the shape is not lung-like: ragged (low solidity, the area
    over its convex hull's) or box-like (it fills nearly all of its bounding box).
    """
    ys, xs = np.nonzero(lung)
    pad = 4
    y0, x0 = max(ys.min() - pad, 0), max(xs.min() - pad, 0)
    crop = lung[y0 : ys.max() + pad + 1, x0 : xs.max() + pad + 1]
    # An 11x11 opening removes strokes and arrow shafts up to ~5 % of the image wide; intersecting the
    # original with the opening grown by 3 px gives the sharp costophrenic angles back, but not the strokes.
    square = np.ones((3, 3), bool)
    opened = ndimage.binary_opening(crop, structure=square, iterations=5)
    opened = crop & ndimage.binary_dilation(opened, structure=square, iterations=3)
    labels, n = ndimage.label(opened)
    if n == 0:
        return None
    largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    area = int(largest.sum())
    if area < 50:
        return None
    rows, cols = np.nonzero(largest.any(1))[0], np.nonzero(largest.any(0))[0]
    extent = area / ((rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1))
    edge = np.argwhere(largest & ~ndimage.binary_erosion(largest))
    solidity = area / ConvexHull(edge).volume
    # Knobs left by arrow heads show up as area that a wider opening removes.
    knobs = area - int(ndimage.binary_opening(largest, structure=np.ones((3, 3), bool), iterations=6).sum())
    if solidity < 0.85 or extent > 0.83 or knobs > 0.035 * area:
        return None
    out = np.zeros_like(lung)
    out[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = largest
    return out


def _two_lungs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a binary mask into (right, left) lung, or None when it is not a frontal two-lung mask."""
    labels, n = ndimage.label(mask)
    if n < 2:
        return None  # empty (lateral views, CT slices, ...) or a single blob
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    a, b = order[0] + 1, order[1] + 1
    total = sizes[order[0]] + sizes[order[1]]
    if sizes[order[1]] < 0.25 * total or total < 0.03 * mask.size:
        return None
    cols = np.arange(mask.shape[1])
    xa = (cols * (labels == a).sum(0)).sum() / sizes[a - 1]
    xb = (cols * (labels == b).sum(0)).sum() / sizes[b - 1]
    right, left = (labels == a, labels == b) if xa < xb else (labels == b, labels == a)
    right, left = _clean_lung(right), _clean_lung(left)
    if right is None or left is None:
        return None
    # Both lungs must sit side by side (not one above the other, nor overlapping columns much).
    rx = np.nonzero(right.any(0))[0]
    lx = np.nonzero(left.any(0))[0]
    if rx.mean() >= lx.mean() or rx[-1] - lx[0] > 0.15 * (lx[-1] - rx[0]):
        return None
    ry = np.nonzero((right | left).any(1))[0]
    aspect = (lx[-1] - rx[0] + 1) / (ry[-1] - ry[0] + 1)
    if not 0.7 < aspect < 2.0:
        return None
    return right, left


def _canonicalise(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Crop both lungs to their joint bounding box and resample it into the canonical box, ``[2, R, R]``."""
    both = right | left
    ys = np.nonzero(both.any(1))[0]
    xs = np.nonzero(both.any(0))[0]
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    r = _BANK_RES
    # Fill the canonical box but keep half of the mask's own aspect-ratio deviation, so lung shapes vary.
    box_w = (_CANON_X[1] - _CANON_X[0]) * r
    box_h = (_CANON_Y[1] - _CANON_Y[0]) * r
    sx, sy = box_w / (x1 - x0), box_h / (y1 - y0)
    s = math.sqrt(sx * sy)
    out_w = max(8, round((x1 - x0) * math.sqrt(sx * s)))
    out_h = max(8, round((y1 - y0) * math.sqrt(sy * s)))
    left_px = round(r * 0.5 - out_w / 2)
    top_px = round(_CANON_Y[0] * r)
    out = np.zeros((2, r, r), np.uint8)
    for ch, lung in enumerate((right, left)):
        crop = Image.fromarray(lung[y0:y1, x0:x1].astype(np.uint8) * 255)
        resized = np.asarray(crop.resize((out_w, out_h), Image.Resampling.BILINEAR))
        h = min(out_h, r - top_px)
        w0, w1 = max(0, left_px), min(r, left_px + out_w)
        out[ch, top_px : top_px + h, w0:w1] = resized[:h, w0 - left_px : w1 - left_px]
    return out


def _border_profiles(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Medial border per row, base per column and bounding box of each lung of one canonical mask."""
    r = masks.shape[-1]
    coords = (np.arange(r, dtype=np.float32) + 0.5) / r
    medial = np.full((2, r), np.nan, np.float32)
    base = np.full((2, r), np.nan, np.float32)
    boxes = np.zeros((2, 4), np.float32)
    for ch in range(2):
        m = masks[ch] >= 128
        rows = m.any(1)
        cols = m.any(0)
        if ch == 0:  # right lung: medial = largest x
            medial[ch, rows] = coords[r - 1 - np.argmax(m[rows, ::-1], axis=1)]
        else:  # left lung: medial = smallest x
            medial[ch, rows] = coords[np.argmax(m[rows], axis=1)]
        base[ch, cols] = coords[r - 1 - np.argmax(m[::-1, cols], axis=0)]
        yy, xx = np.nonzero(rows)[0], np.nonzero(cols)[0]
        boxes[ch] = (coords[xx[0]], coords[xx[-1]], coords[yy[0]], coords[yy[-1]])
    return medial, base, boxes


def _build_bank(path: Path) -> LungMaskBank:
    """Decode, check, clean and normalise every mask of the archive (the slow part: PNG decoding)."""
    names, masks, medial, base, boxes = [], [], [], [], []
    with zipfile.ZipFile(path) as archive:
        members = sorted(n for n in archive.namelist() if not n.endswith("/"))
        for name in members:
            with Image.open(io.BytesIO(archive.read(name))) as im:
                gray = im.convert("L")
                # Shape analysis at ~224 px is plenty and keeps loading to a few seconds.
                scale = _ANALYSIS_RES / max(gray.size)
                small_size = (max(1, round(gray.size[0] * scale)), max(1, round(gray.size[1] * scale)))
                small = np.asarray(gray.resize(small_size, Image.Resampling.BOX)) >= 64
            lungs = _two_lungs(small)
            if lungs is None:
                continue
            canon = _canonicalise(*lungs)
            med, bas, box = _border_profiles(canon)
            names.append(name)
            masks.append(canon)
            medial.append(med)
            base.append(bas)
            boxes.append(box)
    return LungMaskBank(
        names=tuple(names),
        masks=np.stack(masks),
        medial_x=np.stack(medial),
        base_y=np.stack(base),
        boxes=np.stack(boxes),
        n_archive=len(members),
    )


# Bump when the mask cleaning or the canonical frame changes, so stale caches are not reused.
_BANK_VERSION = 2
CACHE_ENV = "EXPLAIN_ENGINE_CACHE_DIR"


def bank_cache_dir() -> Path | None:
    """Folder for the processed lung mask bank: ``$EXPLAIN_ENGINE_CACHE_DIR`` if set (empty = no cache),
    else ``$XDG_CACHE_HOME/explain_engine`` or ``~/.cache/explain_engine``.

    Decoding the 517 PNGs takes several seconds; the processed bank (~2 MB) loads in a fraction of that.
    """
    if CACHE_ENV in os.environ:
        value = os.environ[CACHE_ENV]
        return Path(value).expanduser() if value else None
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "explain_engine"


def _bank_cache_file(path: Path) -> Path | None:
    folder = bank_cache_dir()
    if folder is None:
        return None
    # Keyed on the archive's content, so a different torchxrayvision release gets its own entry.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return folder / f"lung_mask_bank_v{_BANK_VERSION}_{_BANK_RES}_{digest}.npz"


def _write_bank(bank: LungMaskBank, file: Path) -> None:
    with atomic_path(file, suffix=".tmp.npz") as tmp:  # concurrent processes never read half a file
        np.savez_compressed(
            tmp,
            names=np.array(json.dumps(bank.names)),
            masks=bank.masks,
            medial_x=bank.medial_x,
            base_y=bank.base_y,
            boxes=bank.boxes,
            n_archive=np.array(bank.n_archive),
        )


def _read_bank(file: Path) -> LungMaskBank:
    with np.load(file, allow_pickle=False) as z:
        return LungMaskBank(
            names=tuple(json.loads(str(z["names"]))),
            masks=z["masks"],
            medial_x=z["medial_x"],
            base_y=z["base_y"],
            boxes=z["boxes"],
            n_archive=int(z["n_archive"]),
        )


@functools.lru_cache(maxsize=2)
def _load_bank_cached(path: str) -> LungMaskBank:
    cache = _bank_cache_file(Path(path))
    if cache is not None and cache.is_file():
        try:
            return _read_bank(cache)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or partial cache: rebuild it below
    bank = _build_bank(Path(path))
    if cache is not None:
        try:
            _write_bank(bank, cache)
        except OSError:
            pass  # a read-only home is fine: the bank is simply rebuilt next time
    return bank


def load_lung_mask_bank(zip_path: str | os.PathLike | None = None) -> LungMaskBank:
    """Load, filter and normalise the torchxrayvision lung masks.

    Masks that are empty (lateral views, CT, figures), are not two side-by-side lungs, or are ragged or
    box-like after removing annotation strokes are skipped; about 395 of the 517 remain. The result is
    cached in memory per process and on disk (see ``bank_cache_dir``): building it takes ~5 s, loading
    the disk cache well under a second.

    Args:
        zip_path: archive to read; default: the one inside the installed torchxrayvision package.

    Raises:
        LungMaskArchiveNotFoundError: the archive does not exist (the message names the expected path).
    """
    return _load_bank_cached(str(_checked_zip_path(zip_path)))


@functools.lru_cache(maxsize=1)
def _default_bank() -> LungMaskBank:
    # The renderer asks for the bank for every phantom; resolve the package path only once.
    return load_lung_mask_bank()


# Channels of the per-size render bank.
_CH_RIGHT, _CH_LEFT, _CH_DEPTH = range(3)


class _RenderBank:
    """Per-size render masks ``[size + 2, size + 2, 4]`` uint8 (0..255), zero-padded by one pixel.

    Channels: right lung, left lung, aeration depth (both lungs blurred with sigma = 5 % of the image, so the
    air column is thick in the lung centre and thin at the margins) and an unused zero channel that makes a
    pixel four bytes, which the sampler gathers as one word. Precomputing the blur keeps it out of the
    per-phantom cost; each mask is prepared on first use, so a few phantoms do not pay for all of them.
    """

    def __init__(self, size: int):
        bank = _default_bank()
        self.size = size
        self.source = bank.masks
        self.masks = np.zeros((len(bank), size + 2, size + 2, 4), np.uint8)
        self.ready = np.zeros(len(bank), bool)

    def __getitem__(self, index: int) -> np.ndarray:
        if not self.ready[index]:
            size = self.size
            resample = Image.Resampling.BOX if size < self.source.shape[-1] else Image.Resampling.BILINEAR
            both: np.ndarray = np.zeros((size, size), np.float32)
            for ch in (_CH_RIGHT, _CH_LEFT):
                lung = np.asarray(Image.fromarray(self.source[index, ch]).resize((size, size), resample))
                self.masks[index, 1:-1, 1:-1, ch] = lung
                both += lung
            both = np.minimum(both, 255.0) / 255.0
            depth = ndimage.gaussian_filter(both, sigma=0.05 * size, mode="constant")
            self.masks[index, 1:-1, 1:-1, _CH_DEPTH] = np.round(255.0 * np.clip(depth, 0.0, 1.0))
            self.ready[index] = True
        return self.masks[index]


@functools.lru_cache(maxsize=4)
def _bank_at_size(size: int) -> _RenderBank:
    """The render bank for one image size (cached per size)."""
    return _RenderBank(size)
