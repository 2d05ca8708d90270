"""The demo study's case folder: held-out and review phantoms as PNG files with a labels CSV.

Held-out cases are drawn like the training data (the planted shortcut present at the training strength), as a
hospital's held-out split would be; review cases come from another stream. ``cases.json`` records, per file, the
phantom stream and index and its factor values, so the ground truth (opacity mask, lung mask) can be rendered
again at any size for validation.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .phantoms import make_phantom, make_phantom_dataset

HELDOUT_SEED = 1000
REVIEW_SEED = 2000


@dataclass
class DemoCase:
    filename: str
    label: int
    split: str  # "heldout" or "review"
    seed: int
    index: int


def make_demo_cases(
    out: str | os.PathLike,
    *,
    heldout: int = 200,
    review: int = 20,
    size: int = 64,
    shortcut_strength: float = 0.8,
    progress_fn: Callable[[int, int, str], None] | None = None,
) -> list[DemoCase]:
    """Write ``heldout`` + ``review`` phantom PNGs (8-bit greyscale) to ``out/heldout/`` and ``out/review/``,
    ``out/labels.csv`` (columns ``filename,label,split``, filenames relative to ``out``) and ``out/cases.json``."""
    out = Path(out)
    cases: list[DemoCase] = []
    total = heldout + review
    for split, n, seed in (("heldout", heldout, HELDOUT_SEED), ("review", review, REVIEW_SEED)):
        if n <= 0:
            continue
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        ds = make_phantom_dataset(n, size=size, seed=seed, split="val", shortcut_strength=shortcut_strength)
        for i in range(n):
            name = f"{split}/{split}_{i:04d}.png"
            Image.fromarray(ds.images[i]).save(out / name)
            cases.append(DemoCase(name, int(ds.labels[i]), split, seed, i))
            if progress_fn:
                progress_fn(len(cases), total, name)
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label", "split"])
        for c in cases:
            w.writerow([c.filename, c.label, c.split])
    meta = {
        "size": size,
        "shortcut_strength": shortcut_strength,
        "phantom_split": "val",
        "cases": [c.__dict__ for c in cases],
    }
    (out / "cases.json").write_text(json.dumps(meta, indent=1))
    return cases


def ground_truth(
    case: DemoCase | dict, *, size: int, shortcut_strength: float = 0.8
) -> dict[str, np.ndarray]:
    """Re-render a demo case's ground truth: ``opacity_mask`` and ``lung_mask`` [size, size] bool, and
    ``factors`` (a ``PhantomFactors``)."""
    c = case if isinstance(case, dict) else case.__dict__
    p = make_phantom(c["seed"], index=c["index"], size=size, split="val", shortcut_strength=shortcut_strength)
    truth: dict[str, Any] = {"opacity_mask": p.opacity_mask, "lung_mask": p.lung_mask, "factors": p.factors}
    return truth
