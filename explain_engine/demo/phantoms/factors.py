"""What a phantom shows: its pathology (the planted airspace opacity), acquisition and device factors, and the
planted shortcut (which factor goes with the label, and how strongly, in each split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lungs import _default_bank

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
