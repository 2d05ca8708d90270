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

from .dataset import (
    PhantomDataset,
    make_phantom,
    make_phantom_dataset,
    phantom_factors,
)
from .factors import (
    DEVICES,
    OPACITY_DENSITY_RANGE,
    OPACITY_SIZE_RANGE,
    OPACITY_ZONES,
    SHORTCUT_FACTORS,
    SPLITS,
    PhantomFactors,
    sample_factors,
    shortcut_probability,
)
from .lungs import (
    CACHE_ENV,
    LungMaskArchiveNotFoundError,
    LungMaskBank,
    bank_cache_dir,
    list_lung_mask_files,
    load_lung_mask_bank,
    lung_mask_zip_path,
)
from .render import (
    Phantom,
    render_phantom,
)

__all__ = [
    "CACHE_ENV",
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
