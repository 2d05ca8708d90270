"""Procedural frontal chest radiograph phantoms with a planted pathology and a planted shortcut.

The demo study needs chest X-ray-like images whose ground truth is known: which images hold an airspace
opacity, where it is, and which acquisition or device factor is spuriously correlated with the label. This
module renders such phantoms from the 517 real lung segmentation masks that ship inside the torchxrayvision
wheel (``torchxrayvision/data/semantic_masks_v7labs_lungs.zip``, V7 Labs, CC BY 4.0). The archive is read from
the installed package at run time; nothing is downloaded and nothing is copied into this repository.

Conventions
-----------
* Images are float32 arrays of shape ``[H, W]`` (square, ``H == W == size``) with values in ``[0, 1]``, shown
  like a displayed radiograph: bright = dense (bone, heart, opacity), dark = air (lungs, outside the body).
* Image left is the patient's right (standard frontal view), so the "right lung" is on the left of the array.
* Geometry is described in normalised image coordinates ``(x, y)`` in ``[0, 1]``, ``x`` to the right and
  ``y`` downwards, so one phantom has the same anatomy whatever ``size`` it is rendered at.
* Everything is deterministic: factors are drawn from ``numpy.random.default_rng((seed, index, 0))`` and the
  nuisance detail of the rendering (vessels, blob layout, noise) from ``default_rng((seed, index, 1))``, so
  phantom ``index`` of a dataset does not depend on how many phantoms the dataset holds.

The planted shortcut: in the ``"train"``/``"val"`` splits, the shortcut factor (by default the "portable AP"
acquisition look; optionally a support device) is present with probability ``shortcut_strength`` in positives
and ``1 - shortcut_strength`` in negatives. The ``"flipped"`` split reverses that correlation and the
``"neutral"`` split makes the factor independent of the label (probability 0.5 in both classes).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import io
import json
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from scipy.spatial import ConvexHull

__all__ = [
    "DEVICES",
    "OPACITY_DENSITY_RANGE",
    "OPACITY_SIZE_RANGE",
    "OPACITY_ZONES",
    "SHORTCUT_FACTORS",
    "SPLITS",
    "bank_cache_dir",
    "LungMaskArchiveNotFoundError",
    "LungMaskBank",
    "Phantom",
    "PhantomDataset",
    "PhantomFactors",
    "list_lung_mask_files",
    "load_lung_mask_bank",
    "lung_mask_zip_path",
    "make_phantom",
    "make_phantom_dataset",
    "phantom_factors",
    "render_phantom",
    "sample_factors",
    "shortcut_probability",
]

# Where the lung masks live inside the installed torchxrayvision package.
LUNG_MASK_ARCHIVE = Path("data") / "semantic_masks_v7labs_lungs.zip"

# Lobar/zonal location of the opacity. The medial-base zones sit against the heart border and the
# hemidiaphragm, which they blur (the silhouette sign), as in the findings reviewed in the paper.
OPACITY_ZONES: tuple[str, ...] = (
    "right_upper",  # right upper zone (apex to hilum)
    "right_middle",  # right middle lobe: abuts and blurs the right heart border
    "right_lower",  # right lower lobe base: abuts and blurs the right hemidiaphragm
    "right_medial_base",  # right cardiophrenic angle: blurs right heart border and hemidiaphragm
    "left_upper",  # left upper zone
    "left_lower",  # left base: abuts and blurs the left hemidiaphragm
)

# Default ranges of the opacity's size (radius / lung height) and density (fraction of air displaced).
# They make a mix of obvious and subtle opacities: a small CNN reaches an AUROC in the mid 0.9s on the
# opacity alone, which leaves room for the planted shortcut to help it.
OPACITY_SIZE_RANGE = (0.1, 0.28)
OPACITY_DENSITY_RANGE = (0.25, 0.85)

# Support devices (all radio-opaque lines/tubes, or ECG electrodes with leads).
DEVICES: tuple[str, ...] = ("none", "endotracheal_tube", "central_line", "nasogastric_tube", "ecg_leads")

# Factors that can carry the planted shortcut.
SHORTCUT_FACTORS: tuple[str, ...] = ("portable_ap", "device")

# "train" and "val" carry the shortcut correlation, "flipped" reverses it, "neutral" removes it.
SPLITS: tuple[str, ...] = ("train", "val", "neutral", "flipped")

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
        resized = np.asarray(crop.resize((out_w, out_h), Image.BILINEAR))
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
                im = im.convert("L")
                # Shape analysis at ~224 px is plenty and keeps loading to a few seconds.
                scale = _ANALYSIS_RES / max(im.size)
                small_size = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
                small = np.asarray(im.resize(small_size, Image.BOX)) >= 64
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
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        names=np.array(json.dumps(bank.names)),
        masks=bank.masks,
        medial_x=bank.medial_x,
        base_y=bank.base_y,
        boxes=bank.boxes,
        n_archive=np.array(bank.n_archive),
    )
    os.replace(tmp, file)  # atomic, so concurrent processes never read half a file


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
            resample = Image.BOX if size < self.source.shape[-1] else Image.BILINEAR
            both = np.zeros((size, size), np.float32)
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


# ----------------------------------------------------------------------------------------------------------
# Factors
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomFactors:
    """All generative factors of one phantom; together with a render seed they fix the image.

    Geometry is in normalised image units (fractions of the image side) unless stated otherwise.

    Attributes:
        label: 1 when an airspace opacity (pneumonia-like) is present, else 0.
        split: split the factors were sampled for (see ``SPLITS``); "custom" when built by hand.
        shortcut_factor: which factor carries the planted shortcut ("portable_ap" or "device").
        lung_mask_index: index of the lung shape in ``load_lung_mask_bank()``.
        opacity_zone: one of ``OPACITY_ZONES`` for positives, None for negatives.
        opacity_size: opacity radius (Gaussian sigma of the main lobule) as a fraction of the lung height; 0
            for negatives. 0.1-0.28 in sampled positives by default.
        opacity_density: fraction of the aerated lung replaced by fluid at the opacity core, 0..1; 0 for
            negatives. 0.25-0.85 in sampled positives by default.
        portable_ap: the bedside AP acquisition look: magnified heart, clavicles projected high, scapulae
            over the lung apices, shallow inspiration, more scatter (greyer, lower contrast) and more noise.
        device: one of ``DEVICES``.
        marker: laterality marker letter, "R" (placed top left) or "L" (placed top right).
        rotation_deg: in-plane patient rotation, degrees (counter-clockwise positive).
        shift_x: horizontal patient offset in the field of view, normalised.
        shift_y: vertical patient offset, normalised.
        scale: patient magnification (1 = lungs span the canonical 74 % of the width).
        inspiration: vertical lung expansion (1 = as in the mask; < 1 = raised hemidiaphragms).
        heart_size: cardiac silhouette width relative to the gap between the lungs.
        habitus: soft-tissue thickness factor (1 = average; larger = heavier patient, hazier lungs).
        exposure: detector dose factor (1 = nominal; > 1 darker, "over-penetrated"; < 1 brighter).
        contrast: display gamma (> 1 = more contrast in the lungs).
        noise_std: standard deviation of the quantum noise in display units.
        breast_shadows: soft-tissue shadows over both lung bases (independent of the label; they make
            basal opacities harder to call, as on real films).
    """

    label: int
    split: str = "custom"
    shortcut_factor: str = "portable_ap"
    lung_mask_index: int = 0
    opacity_zone: str | None = None
    opacity_size: float = 0.0
    opacity_density: float = 0.0
    portable_ap: bool = False
    device: str = "none"
    marker: str = "R"
    rotation_deg: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    scale: float = 1.0
    inspiration: float = 1.0
    heart_size: float = 1.0
    habitus: float = 1.0
    exposure: float = 1.0
    contrast: float = 1.0
    noise_std: float = 0.02
    breast_shadows: bool = False

    @property
    def shortcut_present(self) -> bool:
        """Whether the shortcut factor is switched on in this phantom."""
        if self.shortcut_factor == "device":
            return self.device != "none"
        return bool(self.portable_ap)

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PhantomFactors:
        """Inverse of ``to_dict``; unknown keys are ignored so older files stay loadable."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def shortcut_probability(label: int, split: str, shortcut_strength: float) -> float:
    """P(shortcut factor present | label) in a split.

    ``shortcut_strength`` s is P(present | positive) in "train"/"val", where P(present | negative) = 1 - s;
    "flipped" swaps the two; "neutral" uses 0.5 for both. s = 0.5 means no shortcut at all.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= shortcut_strength <= 1.0:
        raise ValueError(f"shortcut_strength must be in [0, 1], got {shortcut_strength}")
    if split == "neutral":
        return 0.5
    p_pos = shortcut_strength if split in ("train", "val") else 1.0 - shortcut_strength
    return p_pos if label == 1 else 1.0 - p_pos


def sample_factors(
    rng: np.random.Generator,
    *,
    label: int | None = None,
    positive_fraction: float = 0.5,
    shortcut_strength: float = 0.8,
    split: str = "train",
    shortcut_factor: str = "portable_ap",
    zones: Sequence[str] = OPACITY_ZONES,
    zone_weights: Sequence[float] | None = None,
    device_rate: float = 0.3,
    portable_rate: float = 0.3,
    opacity_size_range: tuple[float, float] = OPACITY_SIZE_RANGE,
    opacity_density_range: tuple[float, float] = OPACITY_DENSITY_RANGE,
) -> PhantomFactors:
    """Draw the factors of one phantom.

    Args:
        rng: generator to draw from (the only source of randomness).
        label: force the label; None draws it with P(1) = ``positive_fraction``.
        positive_fraction: prevalence of the opacity when ``label`` is None.
        shortcut_strength: skew of the shortcut factor, see ``shortcut_probability``.
        split: one of ``SPLITS``; decides the direction of the shortcut correlation.
        shortcut_factor: "portable_ap" (default, a global acquisition look) or "device" (any line/tube).
        zones: opacity zones to draw from; zone_weights: their relative weights (default uniform).
        device_rate: P(some device) when the device is not the shortcut factor (label-independent).
        portable_rate: P(portable AP) when it is not the shortcut factor (label-independent).
        opacity_size_range, opacity_density_range: uniform ranges of ``opacity_size`` and
            ``opacity_density`` for positives; they set how hard the real cue is to see.

    Returns:
        A ``PhantomFactors``. Factors other than the label and the shortcut factor do not depend on the
        label.
    """
    if shortcut_factor not in SHORTCUT_FACTORS:
        raise ValueError(f"shortcut_factor must be one of {SHORTCUT_FACTORS}, got {shortcut_factor!r}")
    unknown = set(zones) - set(OPACITY_ZONES)
    if unknown:
        raise ValueError(f"unknown opacity zones {sorted(unknown)}; choose from {OPACITY_ZONES}")
    n_masks = len(_default_bank())
    if label is None:
        label = int(rng.random() < positive_fraction)
    label = int(label)
    # The draw order is fixed so that the same rng state always gives the same factors.
    shortcut_on = bool(rng.random() < shortcut_probability(label, split, shortcut_strength))
    other_u = rng.random()
    device_u = rng.integers(1, len(DEVICES))
    if shortcut_factor == "portable_ap":
        portable = shortcut_on
        device = DEVICES[device_u] if other_u < device_rate else "none"
    else:
        portable = bool(other_u < portable_rate)
        device = DEVICES[device_u] if shortcut_on else "none"

    weights = np.ones(len(zones)) if zone_weights is None else np.asarray(zone_weights, float)
    zone_i = rng.choice(len(zones), p=weights / weights.sum())
    size = rng.uniform(*opacity_size_range)
    density = rng.uniform(*opacity_density_range)
    if label == 0:
        zone, size, density = None, 0.0, 0.0
    else:
        zone = zones[zone_i]

    # Portable films are taken supine/semi-erect at the bedside: shallower inspiration, more rotation.
    rot_sd = 3.0 if portable else 1.5
    return PhantomFactors(
        label=label,
        split=split,
        shortcut_factor=shortcut_factor,
        lung_mask_index=int(rng.integers(n_masks)),
        opacity_zone=zone,
        opacity_size=float(size),
        opacity_density=float(density),
        portable_ap=portable,
        device=device,
        marker="R" if rng.random() < 0.5 else "L",
        rotation_deg=float(np.clip(rng.normal(0.0, rot_sd), -7.0, 7.0)),
        shift_x=float(rng.uniform(-0.03, 0.03)),
        shift_y=float(rng.uniform(-0.025, 0.03)),
        scale=float(rng.uniform(0.92, 1.04)),
        inspiration=float(rng.uniform(0.84, 0.95) if portable else rng.uniform(0.94, 1.04)),
        heart_size=float(rng.uniform(0.95, 1.2) * (1.12 if portable else 1.0)),
        habitus=float(rng.uniform(0.9, 1.15)),
        exposure=float(rng.uniform(0.9, 1.1)),
        contrast=float(rng.uniform(0.92, 1.1)),
        noise_std=float(rng.uniform(0.01, 0.02) * (1.6 if portable else 1.0)),
        breast_shadows=bool(rng.random() < 0.4),
    )


# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phantom:
    """One rendered phantom.

    Attributes:
        image: ``[size, size]`` float32 in [0, 1], bright = dense.
        opacity_mask: ``[size, size]`` bool, where the airspace opacity is (empty for negatives).
        lung_mask: ``[size, size]`` bool, both lung fields.
        factors: the factors it was rendered from.
    """

    image: np.ndarray
    opacity_mask: np.ndarray
    lung_mask: np.ndarray
    factors: PhantomFactors


@functools.lru_cache(maxsize=8)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


class _Pose:
    """Maps patient (canonical) coordinates to image coordinates and back: scale, rotate, shift."""

    def __init__(self, f: PhantomFactors):
        t = math.radians(f.rotation_deg)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.scale = f.scale
        self.cx, self.cy = 0.5 + f.shift_x, 0.5 + f.shift_y

    def to_patient(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        du, dv = (u - self.cx) / self.scale, (v - self.cy) / self.scale
        return self.cos * du + self.sin * dv + 0.5, -self.sin * du + self.cos * dv + 0.5

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - 0.5, y - 0.5
        return (
            (self.cos * dx - self.sin * dy) * self.scale + self.cx,
            (self.sin * dx + self.cos * dy) * self.scale + self.cy,
        )


def _bilinear(padded: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinearly sample ``padded [S + 2, S + 2, C]`` (an ``[S, S, C]`` grid with a one-pixel zero border).

    ``x, y`` are normalised coordinates of the unpadded grid; points off the grid read zero. Channels are
    last so that one gather fetches all of them. Returns float32 ``[C, *x.shape]`` in the units of ``padded``.
    """
    sp, _, c = padded.shape
    s = sp - 2
    # +0.5 maps pixel centres onto integer positions of the padded grid; clipping parks every
    # off-grid point on the zero border.
    px = np.clip(x.ravel() * s + 0.5, 0.0, s + 0.999)
    py = np.clip(y.ravel() * s + 0.5, 0.0, s + 0.999)
    x0 = px.astype(np.intp)
    y0 = py.astype(np.intp)
    fx = (px - x0).astype(np.float32)[:, None]
    fy = (py - y0).astype(np.float32)[:, None]
    i00 = y0 * sp + x0
    if padded.dtype == np.uint8 and c == 4:
        # Four uint8 channels gather as one uint32 each: a 1-D take is much faster than a row gather.
        flat = padded.reshape(-1, 4).view(np.uint32).ravel()

        def gather(i: np.ndarray) -> np.ndarray:
            return flat.take(i).view(np.uint8).reshape(-1, 4).astype(np.float32)
    else:
        flat = padded.reshape(-1, c)

        def gather(i: np.ndarray) -> np.ndarray:
            return flat.take(i, axis=0).astype(np.float32, copy=False)

    a = gather(i00)
    b = gather(i00 + 1)
    cc = gather(i00 + sp)
    d = gather(i00 + sp + 1)
    top = a + (b - a) * fx
    bottom = cc + (d - cc) * fx
    out = top + (bottom - top) * fy
    return np.ascontiguousarray(out.T).reshape((c, *x.shape))


def _smooth_noise(rng: np.random.Generator, grid: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth random field in [-1, 1]-ish sampled at (x, y): the same field whatever the image size."""
    coarse = np.zeros((grid + 2, grid + 2, 1), np.float32)
    coarse[1:-1, 1:-1, 0] = rng.standard_normal((grid, grid))
    return _bilinear(coarse, x, y)[0]


def _splat(size: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Deposit weights ``w`` at image points (u, v) with bilinear weights onto a ``[size, size]`` canvas."""
    px = u * size - 0.5
    py = v * size - 0.5
    x0 = np.floor(px).astype(np.intp)
    y0 = np.floor(py).astype(np.intp)
    fx = px - x0
    fy = py - y0
    out = np.zeros(size * size, np.float64)
    for dx, dy, ww in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xx, yy = x0 + dx, y0 + dy
        ok = (xx >= 0) & (xx < size) & (yy >= 0) & (yy < size)
        out += np.bincount(yy[ok] * size + xx[ok], weights=(w * ww)[ok], minlength=size * size)
    return out.reshape(size, size).astype(np.float32)


def _polyline(points: np.ndarray, n: int) -> np.ndarray:
    """Resample a polyline ``[K, 2]`` to ``n`` points evenly spaced along its length, ``[n, 2]``."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, t[-1], n)
    return np.stack([np.interp(s, t, points[:, 0]), np.interp(s, t, points[:, 1])], axis=1)


def _smooth_curve(ctrl: np.ndarray, n: int) -> np.ndarray:
    """Catmull-Rom-like smooth curve through control points ``[K, 2]``, ``[n, 2]``."""
    k = len(ctrl)
    t = np.linspace(0, k - 1, n)
    i = np.clip(np.floor(t).astype(int), 0, k - 2)
    f = (t - i)[:, None]
    p0 = ctrl[np.clip(i - 1, 0, k - 1)]
    p1 = ctrl[i]
    p2 = ctrl[i + 1]
    p3 = ctrl[np.clip(i + 2, 0, k - 1)]
    return 0.5 * (
        2 * p1 + (-p0 + p2) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * f**3
    )


_VESSEL_STEPS = 28
# Calibre along a branch: tapering from the origin towards the periphery.
_VESSEL_TAPER = (1.0 - np.linspace(0.0, 0.9, _VESSEL_STEPS)) ** 1.3


def _vessel_points(rng: np.random.Generator, hila: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Branching pulmonary vessel trees from both hila, as weighted points ``[P, 3]`` (x, y, weight).

    Nine trunks per lung fan out from the hilum (apex, lateral, base), each bends as a random walk and gives
    off two side branches. Both lungs are drawn in one vectorised pass.
    """
    steps, n_trunks = _VESSEL_STEPS, 9
    side = np.repeat([0, 1], n_trunks)
    lateral = np.where(side == 0, -1.0, 1.0)
    w = boxes[:, 1] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 2]
    reach = 0.9 * np.maximum(w, 0.5 * h)[side]
    phi = np.tile(np.linspace(-1.35, 1.45, n_trunks), 2) + rng.normal(0, 0.12, 2 * n_trunks)
    length = reach * rng.uniform(0.55, 0.95, 2 * n_trunks) * (0.75 + 0.25 * np.cos(phi))
    start_x, start_y = hila[side, 0], hila[side, 1]
    amp0 = np.ones(2 * n_trunks)
    out = []
    for generation in range(2):
        turn = np.cumsum(rng.normal(0, 0.1, (len(phi), steps)), axis=1) + phi[:, None]
        step = (length / steps)[:, None]
        xs = start_x[:, None] + np.cumsum(lateral[:, None] * np.cos(turn) * step, axis=1)
        ys = start_y[:, None] + np.cumsum(np.sin(turn) * step, axis=1)
        weight = amp0[:, None] * _VESSEL_TAPER[None, :] * step
        out.append(np.stack([xs.ravel(), ys.ravel(), weight.ravel()], 1))
        if generation == 1:
            break
        # Each trunk gives off two side branches at random points along it.
        nb = len(phi)
        at = rng.integers(steps // 4, 3 * steps // 4, (nb, 2))
        idx = np.arange(nb)[:, None]
        start_x, start_y = xs[idx, at].ravel(), ys[idx, at].ravel()
        phi = (turn[idx, at] + rng.choice([-1.0, 1.0], (nb, 2)) * rng.uniform(0.35, 0.8, (nb, 2))).ravel()
        length = np.repeat(length, 2) * rng.uniform(0.3, 0.55, 2 * nb)
        lateral = np.repeat(lateral, 2)
        amp0 = 0.6 * (1.0 - at.ravel() / steps)
    return np.concatenate(out)


@functools.lru_cache(maxsize=16)
def _marker_glyph(letter: str, px: int) -> np.ndarray:
    """Bright laterality marker (a lead letter on a square tag) of ``px`` pixels, float32 in [0, 1]."""
    big = 64
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=52)
    except TypeError:  # Pillow without FreeType: small bitmap font, upscaled by the resize below
        font = ImageFont.load_default()
    draw.rectangle((2, 2, big - 3, big - 3), outline=90, width=4)
    bbox = draw.textbbox((0, 0), letter, font=font)
    tx = (big - (bbox[2] - bbox[0])) / 2 - bbox[0]
    ty = (big - (bbox[3] - bbox[1])) / 2 - bbox[1]
    draw.text((tx, ty), letter, fill=255, font=font)
    return np.asarray(canvas.resize((px, px), Image.LANCZOS), np.float32) / 255.0


@dataclass(frozen=True)
class _Heart:
    """Cardiac silhouette in patient coordinates: a sheared ellipse whose apex points down and to the left."""

    cx: float
    cy: float
    half_w: float
    half_h: float
    shear: float
    top: float
    bottom: float

    def field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Normalised squared radius: < 1 inside the silhouette."""
        dx = (x - self.cx - self.shear * (y - self.cy)) / self.half_w
        return dx**2 + ((y - self.cy) / self.half_h) ** 2

    def border_x(self, y: float, side: int) -> float:
        """x of the right (side 0, image left) or left (side 1) heart border at height y."""
        q = 1.0 - ((y - self.cy) / self.half_h) ** 2
        half = self.half_w * math.sqrt(max(q, 0.0))
        centre = self.cx + self.shear * (y - self.cy)
        return centre - half if side == 0 else centre + half


def _heart_geometry(f: PhantomFactors, boxes: np.ndarray, mid: float) -> _Heart:
    """Heart from the lung boxes: cardiothoracic ratio ~0.42 x heart_size, one third right of the midline."""
    (rx0, _, ry0, ry1), (_, lx1, ly0, ly1) = boxes
    thorax_w = lx1 - rx0
    width = 0.42 * f.heart_size * thorax_w
    bottom = 0.5 * (ry1 + ly1) + 0.035  # the heart rests on the diaphragm, below the lung bases
    top = ry0 + 0.46 * (ry1 - ry0)
    right_extent = 0.36 * width
    half_w = 0.5 * width / 1.04
    half_h = 0.62 * (bottom - top)
    cy = bottom - 0.45 * (bottom - top)
    shear = 0.28
    # Place the centre so the widest right extent is right_extent from the midline.
    cx = mid - right_extent + half_w
    return _Heart(cx, cy, half_w, half_h, shear, top, bottom)


def _opacity_centre(
    rng: np.random.Generator,
    zone: str,
    boxes: np.ndarray,
    base_y: np.ndarray,
    heart: _Heart,
    radius: float,
) -> tuple[float, float]:
    """Centre of an opacity in ``zone``, in patient coordinates.

    Args:
        boxes: ``[2, 4]`` lung boxes in patient coordinates.
        base_y: ``[2, R]`` lowest lung y per column (patient coordinates), NaN outside the lung.
        heart: the cardiac silhouette (medial zones hug its border).
        radius: opacity radius in normalised units.
    """
    side = 0 if zone.startswith("right") else 1
    part = zone.split("_", 1)[1]
    x0, x1, y0, y1 = boxes[side]
    h = y1 - y0
    res = base_y.shape[1]
    lateral_edge = x0 if side == 0 else x1
    into_lung = -1.0 if side == 0 else 1.0  # from the heart border towards the lateral chest wall

    if part == "upper":
        y = y0 + h * rng.uniform(0.12, 0.35)
        medial = x1 - 0.02 if side == 0 else x0 + 0.02
        return medial + (lateral_edge - medial) * rng.uniform(0.25, 0.7), float(y)
    if part in ("middle", "medial_base"):
        # Sit just outside the heart border so that the opacity effaces it; the medial base also reaches
        # down into the cardiophrenic angle and so effaces the hemidiaphragm too.
        if part == "middle":
            y = heart.top + (y1 - heart.top) * rng.uniform(0.3, 0.6)
        else:
            y = y1 - h * rng.uniform(0.06, 0.12)
        return heart.border_x(y, side) + into_lung * radius * rng.uniform(0.1, 0.5), float(y)
    # Lower zones: on the dome of the hemidiaphragm, lateral to the heart.
    heart_edge = heart.border_x(y1 - 0.03, side)
    lo, hi = (x0 + 0.04, heart_edge - 0.03) if side == 0 else (heart_edge + 0.03, x1 - 0.04)
    x = rng.uniform(lo, hi) if hi > lo else 0.5 * (x0 + x1)
    b = base_y[side, int(np.clip(x * res, 0, res - 1))]
    b = y1 if np.isnan(b) else b
    return float(x), float(b - radius * rng.uniform(0.2, 0.6))


def _diaphragm_line(base_y: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Hemidiaphragm height per x, ``[2, K]`` (x, y) sorted by x, from the lung bases in patient coordinates.

    Between the lungs (under the heart) the line is bridged linearly; lateral to the lungs it drops into the
    costophrenic recesses.
    """
    res = base_y.shape[1]
    xs = (np.arange(res) + 0.5) / res
    ok0 = ~np.isnan(base_y[0])
    ok1 = ~np.isnan(base_y[1])
    x = np.concatenate([[boxes[0, 0] - 0.1], xs[ok0], xs[ok1], [boxes[1, 1] + 0.1]])
    yv = np.concatenate([[boxes[0, 3] + 0.08], base_y[0, ok0], base_y[1, ok1], [boxes[1, 3] + 0.08]])
    order = np.argsort(x, kind="stable")
    return np.stack([x[order], yv[order]])


def render_phantom(factors: PhantomFactors, *, size: int = 128, seed: int | Sequence[int] = 0) -> Phantom:
    """Render the phantom described by ``factors``.

    Args:
        factors: the generative factors (see ``PhantomFactors``).
        size: output side in pixels (square); 64-256 are the intended sizes.
        seed: seed (int or sequence of ints) for the nuisance detail: vessel branching, opacity lobules,
            textures and noise. The same factors and seed give the same anatomy at every size.

    Returns:
        ``Phantom`` with ``image [size, size]`` float32 in [0, 1] (bright = dense), boolean ``opacity_mask``
        and ``lung_mask``, and the factors.
    """
    f = factors
    if f.opacity_zone is not None and f.opacity_zone not in OPACITY_ZONES:
        raise ValueError(f"unknown opacity zone {f.opacity_zone!r}")
    if f.device not in DEVICES:
        raise ValueError(f"unknown device {f.device!r}")
    bank = _default_bank()
    if not 0 <= f.lung_mask_index < len(bank):
        raise ValueError(f"lung_mask_index {f.lung_mask_index} out of range 0..{len(bank) - 1}")
    rng = np.random.default_rng(seed)
    # Pixel-level fields need size-dependent numbers of draws; they come from their own generator so the
    # main stream, and with it the anatomy, is the same at every size.
    pixel_rng = np.random.default_rng(rng.integers(0, 2**63))
    pose = _Pose(f)
    u, v = _pixel_centres(size)
    x, y = pose.to_patient(u, v)
    portable = f.portable_ap

    # Density is accumulated in arbitrary attenuation units (about 1 = the thickest soft tissue) and
    # turned into display brightness at the end, as a detector and display LUT would.

    # --- lungs: sample the real mask in canonical coordinates; inspiration stretches them downwards.
    ytop = _CANON_Y[0]
    insp = f.inspiration
    sampled = _bilinear(_bank_at_size(size)[f.lung_mask_index], x, ytop + (y - ytop) / insp) * (1.0 / 255.0)
    # Resampling softens the edge; restore a pleura-sharp border about one pixel wide.
    lungs = np.clip(sampled[:2] * 1.3 - 0.15, 0.0, 1.0)  # [2, S, S]: right, left
    depth = sampled[_CH_DEPTH]
    lung = lungs[0] + lungs[1]
    lung_mask = lung >= 0.5
    boxes = bank.boxes[f.lung_mask_index].copy()
    boxes[:, 2:] = ytop + (boxes[:, 2:] - ytop) * insp
    base_y = ytop + (bank.base_y[f.lung_mask_index] - ytop) * insp
    (rx0, rx1, ry0, ry1), (lx0, lx1, ly0, ly1) = boxes
    mid = 0.5 * (rx1 + lx0)  # midline between the lungs
    lung_bottom = max(ry1, ly1)
    dxm = x - mid
    adx = np.abs(dxm)

    # --- body: path length through an elliptical cross-section, thinning to the skin; neck and shoulders.
    half_w = 0.47 * (0.98 + 0.12 * (f.habitus - 1.0))
    neck = 0.105
    # The trapezius slopes from the neck out to the shoulders, which round off over the lung apices.
    shoulder = np.clip((y + 0.01) / 0.22, 0.0, 1.0)
    width = neck + (half_w - neck) * (1.0 - (1.0 - shoulder) ** 3)
    # The chest wall bulges out over the lower ribs; the waist narrows below them.
    width = width * (1.0 + 0.05 * np.exp(-(((y - 0.6) / 0.25) ** 2)))
    width = width - 0.04 * np.clip((y - lung_bottom) / 0.2, 0.0, 1.0)
    body = np.sqrt(np.clip(1.0 - (adx / width) ** 2, 0.0, 1.0))
    density = 0.95 * f.habitus * body
    # The hemidiaphragm line across the chest (lung bases, bridged under the heart): below it lie the liver,
    # spleen and stomach, with no aerated lung in front, so the abdomen is denser than the chest wall.
    diaphragm = _diaphragm_line(base_y, boxes)
    below = np.clip((y - np.interp(x, diaphragm[0], diaphragm[1]).astype(np.float32)) / 0.02 + 0.5, 0.0, 1.0)
    density += 0.14 * f.habitus * body * below

    # --- mediastinum: heart, great vessels, aortic knob, spine, trachea.
    heart = _heart_geometry(f, boxes, mid)
    heart_field = heart.field(x, y)
    # Projected thickness of an ellipsoid: a crisp border against the aerated lung.
    # Below the diaphragm the heart blends into the equally dense abdomen.
    density += 0.52 * np.sqrt(np.clip(1.0 - heart_field, 0.0, 1.0)) * (1.0 - below)
    upper = np.clip((heart.top + 0.03 - y) / 0.06, 0.0, 1.0) * np.clip((y - ry0 + 0.02) / 0.08, 0.0, 1.0)
    vessels_w = 0.055 + 0.01 * (f.heart_size - 1.0)
    density += 0.3 * np.sqrt(np.clip(1.0 - ((dxm + 0.006) / vessels_w) ** 2, 0.0, 1.0)) * upper
    knob_y = ry0 + 0.2 * (ry1 - ry0)
    density += 0.3 * np.exp(-(((x - (mid + 0.05)) / 0.028) ** 2 + ((y - knob_y) / 0.03) ** 2))
    spine = np.sqrt(np.clip(1.0 - (dxm / 0.036) ** 2, 0.0, 1.0))
    vertebrae = 0.7 + 0.3 * np.cos(np.pi * (y - 0.02) / 0.052) ** 2
    density += 0.1 * spine * vertebrae
    carina_y = ry0 + 0.32 * (ry1 - ry0)
    trachea = np.clip(1.0 - ((dxm + 0.004) / 0.018) ** 2, 0.0, 1.0) * np.clip((carina_y - y) / 0.03, 0.0, 1.0)
    density -= 0.16 * trachea
    hila = np.array(
        [
            [heart.border_x(heart.top, 0) - 0.01, ry0 + 0.45 * (ry1 - ry0)],
            [heart.border_x(heart.top, 1) - 0.01, ly0 + 0.40 * (ly1 - ly0)],
        ]
    )
    for hx, hyc in hila:
        density += 0.12 * np.exp(-(((x - hx) / 0.03) ** 2 + ((y - hyc) / 0.05) ** 2))

    # --- lung aeration: a thicker air column in the lung centre than at the apices and lateral margins.
    air = lung * (0.1 + 0.72 * depth)
    # Aeration is never perfectly even (posture, breath hold, body habitus): low-frequency patches of
    # slightly denser lung in both classes, so that only a real opacity stands out.
    uneven = np.clip(_smooth_noise(rng, 6, x, y), 0.0, None)
    air *= 1.0 - rng.uniform(0.0, 0.22) * np.minimum(uneven, 1.5)

    # --- opacity: clustered lobules of fluid-filled airspaces confined to one lung.
    opacity = np.zeros_like(x)
    opacity_mask = np.zeros(x.shape, bool)
    if f.label == 1 and f.opacity_zone is not None and f.opacity_density > 0:
        side = 0 if f.opacity_zone.startswith("right") else 1
        lung_h = boxes[side, 3] - boxes[side, 2]
        radius = max(f.opacity_size * lung_h, 1.5 / size)
        ccx, ccy = _opacity_centre(rng, f.opacity_zone, boxes, base_y, heart, radius)
        n_lobules = 4
        offsets = rng.normal(0.0, 0.5 * radius, (n_lobules, 2))
        offsets[0] = 0.0
        sigmas = radius * rng.uniform(0.5, 0.9, n_lobules)
        sigmas[0] = radius
        weights = rng.uniform(0.6, 1.0, n_lobules)
        weights[0] = 1.0
        for (ox, oy), s, wgt in zip(offsets, sigmas, weights, strict=True):
            opacity += wgt * np.exp(-((x - ccx - ox) ** 2 + (y - ccy - oy) ** 2) / (2 * s * s))
        patchy = _smooth_noise(rng, 28, x, y)
        opacity = np.clip(opacity * (0.9 + 0.2 * patchy), 0.0, None) * lungs[side]
        peak = opacity.max()
        if peak > 0:
            opacity /= peak
        opacity_mask = (opacity >= 0.4) & lung_mask
        if not opacity_mask.any():  # tiny images: keep at least the core pixel
            opacity_mask.flat[np.argmax(opacity * lung_mask)] = True
        # A flat-topped profile: consolidated airspaces are uniformly dense, with a hazy margin.
        opacity = np.clip(opacity * 1.25, 0.0, 1.0)
    # Fluid replaces air; where the opacity touches the heart or diaphragm their border loses contrast.
    # Consolidated lung is also a little denser than the thin air column at the lung margins suggests, so
    # peripheral and basal opacities stay visible.
    density -= air - f.opacity_density * opacity * (air + 0.1 * lungs[0] + 0.1 * lungs[1])

    # --- lung markings: vessels branch out from the hila and taper towards the periphery.
    pts = _vessel_points(rng, hila, boxes)
    vu, vv = pose.to_image(pts[:, 0], pts[:, 1])
    vessels = _splat(size, vu, vv, pts[:, 2] * size)
    vessels = ndimage.gaussian_filter(vessels, sigma=max(0.45, 0.006 * size))
    # Markings fade towards the periphery, where the vessels are too small to resolve.
    density += 0.1 * np.minimum(vessels, 2.0) * lung * np.minimum(1.6 * depth, 1.0) * (1.0 - 0.7 * opacity)
    texture = ndimage.uniform_filter(pixel_rng.standard_normal(x.shape, dtype=np.float32), 3)
    density += 0.025 * texture * lung

    # --- ribs: posterior ribs arch up-and-out from the spine then curve down laterally; fainter
    # anterior ribs slope down towards the sternum.
    d = adx / half_w
    ribs_top, ribs_bottom = min(ry0, ly0) - 0.02, lung_bottom + 0.02
    t = (y + 0.08 * d - 0.25 * d**2 - ribs_top) / (ribs_bottom - ribs_top) * (1.0 / insp) ** 0.3
    n_ribs = 9.5 + rng.uniform(-0.5, 0.5)
    k = n_ribs * np.clip(t, 0.0, 1.3) ** 0.8 + rng.uniform(0, 1)
    rib_profile = (0.5 + 0.5 * np.cos(2 * np.pi * k)) ** 3
    cage = np.clip((d - 0.06) / 0.1, 0.0, 1.0) * np.clip((1.02 - d) / 0.08, 0.0, 1.0)
    cage *= np.clip((t + 0.05) / 0.08, 0.0, 1.0) * np.clip((1.15 - t) / 0.2, 0.0, 1.0)
    # Ribs stand out against the aerated lung and are hard to see through the soft tissue.
    see = 0.35 + 0.65 * lung
    density += 0.09 * rib_profile * cage * see
    t2 = (y - 0.32 * d - ribs_top + 0.12) / (ribs_bottom - ribs_top)
    k2 = 7.0 * np.clip(t2, 0.0, 1.2) + rng.uniform(0, 1)
    anterior = (0.5 + 0.5 * np.cos(2 * np.pi * k2)) ** 3
    front = np.clip((d - 0.3) / 0.15, 0.0, 1.0) * np.clip((0.98 - d) / 0.1, 0.0, 1.0)
    front *= np.clip(t2 / 0.1, 0.0, 1.0) * np.clip((1.0 - t2) / 0.2, 0.0, 1.0)
    density += 0.04 * anterior * front * see

    # --- clavicles: from the sternal notch out to the shoulders; projected higher and flatter when AP.
    lat = adx - 0.035
    cl_y0 = (0.165 if not portable else 0.12) + 0.3 * (ry0 - _CANON_Y[0])
    cl_rise = 0.06 if not portable else 0.02
    cs = np.clip(lat / 0.30, 0.0, 1.0)
    cl_y = cl_y0 - cl_rise * cs + 0.012 * np.sin(2 * np.pi * cs)
    clavicle = np.sqrt(np.clip(1.0 - ((y - cl_y) / 0.021) ** 2, 0.0, 1.0))
    clavicle *= np.clip(lat / 0.02, 0.0, 1.0) * np.clip((0.33 - lat) / 0.03, 0.0, 1.0)
    density += 0.3 * clavicle
    # Scapulae: rotated off the lungs on a PA film, projected over the upper lateral lungs when AP.
    sc_edge = 0.74 if portable else 0.95
    sc_x = sc_edge + 0.12 * np.clip((y - 0.15) / 0.35, 0.0, 1.0) ** 2
    scapula = np.clip((d - sc_x) / 0.03, 0.0, 1.0) * np.clip((0.55 - y) / 0.15, 0.0, 1.0)
    scapula *= np.clip((y - 0.1) / 0.05, 0.0, 1.0)
    density += 0.14 * scapula * body

    # --- stomach bubble under the left hemidiaphragm.
    gas_x = lx0 + 0.6 * (lx1 - lx0)
    dome = base_y[1, int(np.clip(gas_x * _BANK_RES, 0, _BANK_RES - 1))]
    dome = ly1 if np.isnan(dome) else dome
    gas = np.exp(-(((x - gas_x) / 0.055) ** 2 + ((y - dome - 0.055) / 0.028) ** 2))
    density -= 0.22 * gas * (1.0 - lung)

    # --- breast shadows: rounded soft tissue over the lung bases with a crisp lower border.
    if f.breast_shadows:
        size_b = rng.uniform(0.13, 0.19)
        for side in (0, 1):
            bx = boxes[side, 0] + (0.45 if side == 0 else 0.55) * (boxes[side, 1] - boxes[side, 0])
            by = boxes[side, 3] - 0.02 + rng.normal(0.0, 0.015)
            r2 = ((x - bx) / (1.15 * size_b)) ** 2 + ((y - by) / size_b) ** 2
            density += (
                0.16 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) * np.clip((y - by + size_b) / size_b, 0.0, 1.0)
            )

    # --- devices (radio-opaque, in patient coordinates).
    if f.device != "none":
        density += _device_density(f.device, rng, pose, size, mid, carina_y, hila, dome, gas_x, boxes)

    # --- acquisition: film-like response, exposure, contrast, scatter (AP haze), heel effect.
    gain = 1.6 / f.exposure
    img = 1.0 - np.exp(-gain * np.clip(density, 0.0, None))
    img /= 1.0 - math.exp(-gain * 1.3)
    img = np.clip(img, 0.0, 1.0) ** (1.25 * f.contrast)
    if portable:
        # Scatter from a bedside exposure without a grid lifts the dark lungs and flattens contrast.
        img = 0.16 + 0.8 * img
    img *= 1.0 + 0.06 * (u - 0.5) * rng.choice([-1.0, 1.0])  # anode heel effect

    # --- laterality marker (on the detector, so not rotated with the patient).
    glyph = _marker_glyph(f.marker, max(5, round(0.075 * size)))
    gh = glyph.shape[0]
    my = max(1, round(0.03 * size))
    mx = max(1, round(0.04 * size)) if f.marker == "R" else size - gh - max(1, round(0.04 * size))
    patch = img[my : my + gh, mx : mx + gh]
    img[my : my + gh, mx : mx + gh] = np.maximum(patch, 0.95 * glyph)

    # --- quantum noise, slightly correlated by the detector.
    noise = pixel_rng.standard_normal((size, size), dtype=np.float32)
    noise = 0.6 * noise + 1.2 * ndimage.uniform_filter(noise, 3)
    img = img + f.noise_std * noise * (0.6 + 0.4 * img)
    image = np.clip(img, 0.0, 1.0).astype(np.float32)
    return Phantom(image=image, opacity_mask=opacity_mask, lung_mask=lung_mask, factors=f)


def _device_density(
    device: str,
    rng: np.random.Generator,
    pose: _Pose,
    size: int,
    mid: float,
    carina_y: float,
    hila: np.ndarray,
    dome: float,
    gas_x: float,
    boxes: np.ndarray,
) -> np.ndarray:
    """Density of a support device, ``[size, size]``; drawn as thin radio-opaque curves."""
    curves: list[tuple[np.ndarray, float]] = []  # (points [n, 2] in patient coords, line density)
    jitter = rng.normal(0.0, 0.008, 8)
    n = 3 * size
    if device == "endotracheal_tube":
        tip_y = carina_y - 0.05 + jitter[0]
        wall = 0.009
        for off in (-wall, wall):
            ctrl = np.array([[mid + off + jitter[1], -0.02], [mid + off + 0.004, 0.12], [mid + off, tip_y]])
            curves.append((_polyline(ctrl, n), 0.35))
        # The radio-opaque stripe along one wall makes the tube easy to spot.
        ctrl = np.array([[mid - wall + jitter[1], -0.02], [mid - wall + 0.004, 0.12], [mid - wall, tip_y]])
        curves.append((_polyline(ctrl, n), 0.6))
    elif device == "central_line":
        # Right subclavian approach: under the clavicle, medially, then down the SVC to the cavoatrial
        # junction.
        x_start = boxes[0, 0] + 0.06 + jitter[0]
        ctrl = np.array(
            [
                [x_start - 0.08, 0.02],
                [x_start, 0.16 + jitter[1]],
                [mid - 0.09, 0.2 + jitter[2]],
                [mid - 0.035, 0.26],
                [mid - 0.03 + jitter[3], hila[0, 1] + 0.08 + jitter[4]],
            ]
        )
        curves.append((_smooth_curve(ctrl, n), 0.7))
    elif device == "nasogastric_tube":
        ctrl = np.array(
            [
                [mid + 0.005 + jitter[0], -0.02],
                [mid + 0.01, 0.3],
                [mid + 0.03, dome - 0.05],
                [gas_x - 0.02 + jitter[1], dome + 0.06],
                [gas_x + 0.04 + jitter[2], dome + 0.05 + jitter[3]],
            ]
        )
        curves.append((_smooth_curve(ctrl, n), 0.6))
    elif device == "ecg_leads":
        pads = np.array(
            [
                [boxes[0, 0] + 0.05, boxes[0, 2] + 0.05],
                [boxes[1, 1] - 0.05, boxes[1, 2] + 0.05],
                [boxes[1, 1] - 0.08, boxes[1, 3] - 0.02],
            ]
        ) + rng.normal(0.0, 0.02, (3, 2))
        for cx, cy in pads:
            ring = np.linspace(0, 2 * np.pi, 4 * size // 8 + 8, endpoint=False)
            rr = 0.018
            ring_pts = np.stack([cx + rr * np.cos(ring), cy + rr * np.sin(ring)], 1)
            curves.append((ring_pts, 0.9))
            lead_end = np.array([cx + rng.uniform(-0.3, 0.3), -0.05])
            ctrl = np.array([[cx, cy], [0.5 * (cx + lead_end[0]) + rng.normal(0, 0.05), 0.5 * cy], lead_end])
            curves.append((_smooth_curve(ctrl, n), 0.25))
    out = np.zeros((size, size), np.float32)
    for pts, line_density in curves:
        step = np.linalg.norm(np.diff(pts, axis=0), axis=1).mean() * size
        iu, iv = pose.to_image(pts[:, 0], pts[:, 1])
        out += _splat(size, iu, iv, np.full(len(pts), line_density * step))
    return ndimage.gaussian_filter(out, sigma=max(0.4, 0.004 * size))


# ----------------------------------------------------------------------------------------------------------
# Phantoms and datasets
# ----------------------------------------------------------------------------------------------------------

_FACTOR_STREAM = 0
_RENDER_STREAM = 1


def phantom_factors(
    seed: int,
    index: int = 0,
    *,
    label: int | None = None,
    positive_fraction: float = 0.5,
    shortcut_strength: float = 0.8,
    split: str = "train",
    shortcut_factor: str = "portable_ap",
    opacity_size_range: tuple[float, float] = OPACITY_SIZE_RANGE,
    opacity_density_range: tuple[float, float] = OPACITY_DENSITY_RANGE,
) -> PhantomFactors:
    """The factors of phantom ``index`` of the stream ``seed``, without rendering it (microseconds).

    Arguments as in ``sample_factors``; the generator is ``default_rng((seed, index, 0))``.
    """
    return sample_factors(
        np.random.default_rng((seed, index, _FACTOR_STREAM)),
        label=label,
        positive_fraction=positive_fraction,
        shortcut_strength=shortcut_strength,
        split=split,
        shortcut_factor=shortcut_factor,
        opacity_size_range=opacity_size_range,
        opacity_density_range=opacity_density_range,
    )


def make_phantom(
    seed: int,
    *,
    index: int = 0,
    size: int = 128,
    label: int | None = None,
    positive_fraction: float = 0.5,
    shortcut_strength: float = 0.8,
    split: str = "train",
    shortcut_factor: str = "portable_ap",
    opacity_size_range: tuple[float, float] = OPACITY_SIZE_RANGE,
    opacity_density_range: tuple[float, float] = OPACITY_DENSITY_RANGE,
    **factor_overrides,
) -> Phantom:
    """Sample and render phantom ``index`` of the stream ``seed``.

    ``make_phantom(seed, index=i, ...)`` is exactly phantom ``i`` of
    ``make_phantom_dataset(n, seed=seed, ...)`` with the same arguments. ``factor_overrides`` replace
    sampled factors (e.g. ``opacity_zone="left_lower"``, ``portable_ap=False``) before rendering; the
    nuisance detail stays the same.
    """
    factors = phantom_factors(
        seed,
        index,
        label=label,
        positive_fraction=positive_fraction,
        shortcut_strength=shortcut_strength,
        split=split,
        shortcut_factor=shortcut_factor,
        opacity_size_range=opacity_size_range,
        opacity_density_range=opacity_density_range,
    )
    if factor_overrides:
        factors = dataclasses.replace(factors, **factor_overrides)
    return render_phantom(factors, size=size, seed=(seed, index, _RENDER_STREAM))


@dataclass
class PhantomDataset:
    """A batch of phantoms with their ground truth.

    Attributes:
        images: ``[N, H, W]`` uint8 (0..255) or float32 (0..1), bright = dense.
        labels: ``[N]`` int64, 1 = opacity present.
        opacity_masks: ``[N, H, W]`` bool.
        lung_masks: ``[N, H, W]`` bool.
        factors: list of N ``PhantomFactors``.
        seed: the dataset seed (phantom i used ``(seed, i)`` streams).
    """

    images: np.ndarray
    labels: np.ndarray
    opacity_masks: np.ndarray
    lung_masks: np.ndarray
    factors: list[PhantomFactors]
    seed: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def images_float(self) -> np.ndarray:
        """Images as float32 in [0, 1], ``[N, H, W]``."""
        if self.images.dtype == np.uint8:
            return self.images.astype(np.float32) / 255.0
        return self.images.astype(np.float32, copy=False)

    def factor_array(self, name: str) -> np.ndarray:
        """One factor (or ``"shortcut_present"``) for every phantom, as a numpy array ``[N]``."""
        return np.array([getattr(f, name) for f in self.factors])

    @property
    def shortcut_present(self) -> np.ndarray:
        """``[N]`` bool, whether each phantom carries the shortcut factor."""
        return self.factor_array("shortcut_present").astype(bool)

    def save(self, path: str | os.PathLike) -> None:
        """Write to a compressed ``.npz`` (factors stored as JSON)."""
        np.savez_compressed(
            path,
            images=self.images,
            labels=self.labels,
            opacity_masks=self.opacity_masks,
            lung_masks=self.lung_masks,
            factors=np.array(json.dumps([f.to_dict() for f in self.factors])),
            seed=np.array(self.seed),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> PhantomDataset:
        """Read a dataset written by ``save``."""
        with np.load(path, allow_pickle=False) as z:
            return cls(
                images=z["images"],
                labels=z["labels"],
                opacity_masks=z["opacity_masks"],
                lung_masks=z["lung_masks"],
                factors=[PhantomFactors.from_dict(d) for d in json.loads(str(z["factors"]))],
                seed=int(z["seed"]),
            )


def make_phantom_dataset(
    n: int,
    *,
    size: int = 128,
    seed: int = 0,
    positive_fraction: float = 0.5,
    shortcut_strength: float = 0.8,
    split: str = "train",
    shortcut_factor: str = "portable_ap",
    dtype: type | np.dtype = np.uint8,
    start: int = 0,
    opacity_size_range: tuple[float, float] = OPACITY_SIZE_RANGE,
    opacity_density_range: tuple[float, float] = OPACITY_DENSITY_RANGE,
) -> PhantomDataset:
    """Render ``n`` phantoms (indices ``start .. start + n - 1`` of the stream ``seed``).

    Phantom i is the same whatever ``n`` is, so datasets can be grown or built in chunks. Use a different
    ``seed`` per split (e.g. train 0, val 1, test 2) so the splits share no phantom.

    Args:
        n: number of phantoms.
        size: side in pixels.
        seed: dataset seed.
        positive_fraction: P(label = 1), drawn independently per phantom.
        shortcut_strength: P(shortcut | positive) in "train"/"val" (see ``shortcut_probability``).
        split: "train", "val", "neutral" or "flipped".
        shortcut_factor: "portable_ap" or "device".
        dtype: ``np.uint8`` (compact, 0..255) or ``np.float32`` (0..1) for ``images``.
        start: index of the first phantom.
        opacity_size_range, opacity_density_range: see ``sample_factors``.

    Returns:
        ``PhantomDataset``. About 4 ms per 128 px phantom and 2 ms per 64 px phantom on one CPU core.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise ValueError("dtype must be uint8 or float32")
    images = np.empty((n, size, size), dtype)
    opacity_masks = np.empty((n, size, size), bool)
    lung_masks = np.empty((n, size, size), bool)
    labels = np.empty(n, np.int64)
    factors = []
    for j in range(n):
        p = make_phantom(
            seed,
            index=start + j,
            size=size,
            positive_fraction=positive_fraction,
            shortcut_strength=shortcut_strength,
            split=split,
            shortcut_factor=shortcut_factor,
            opacity_size_range=opacity_size_range,
            opacity_density_range=opacity_density_range,
        )
        images[j] = np.round(p.image * 255.0) if dtype == np.uint8 else p.image
        opacity_masks[j] = p.opacity_mask
        lung_masks[j] = p.lung_mask
        labels[j] = p.factors.label
        factors.append(p.factors)
    return PhantomDataset(images, labels, opacity_masks, lung_masks, factors, seed=seed)
