"""Draw a grid of example phantoms (docs/phantoms.png) and time the phantom generator.

Usage:
    python bench/phantom_grid.py                      # writes docs/phantoms.png
    python bench/phantom_grid.py --out /tmp/grid.png --seed 3
    python bench/phantom_grid.py --speed 500          # also time 500 phantoms at 64 and 128 px

Rows: one positive per opacity zone (PA, opacity density 0.75); the same phantoms with the opacity mask
outlined; positives with the portable AP look (sampled densities); negatives; negatives with the shortcut
factor or a device; the first row again at 64 px.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explain_engine.demo import phantoms  # noqa: E402

SHORT_ZONE = {
    "right_upper": "R upper",
    "right_middle": "R middle (RHB)",
    "right_lower": "R lower (R hemidiaph.)",
    "right_medial_base": "R medial base",
    "left_upper": "L upper",
    "left_lower": "L base (L hemidiaph.)",
}


def _title(p: phantoms.Phantom) -> str:
    f = p.factors
    first = SHORT_ZONE[f.opacity_zone] if f.opacity_zone else "no opacity"
    if f.opacity_zone:
        first += f" d{f.opacity_density:.2f}"
    extra = ["AP portable" if f.portable_ap else "PA"]
    if f.device != "none":
        extra.append(f.device.replace("_", " "))
    if f.breast_shadows:
        extra.append("breasts")
    return first + "\n" + ", ".join(extra)


def _overlay(p: phantoms.Phantom) -> np.ndarray:
    """RGB image with the lung field outlined in blue and the opacity mask outlined and tinted in red."""
    rgb = np.repeat(p.image[..., None], 3, axis=2)
    lung_edge = p.lung_mask & ~ndimage.binary_erosion(p.lung_mask)
    rgb[lung_edge] = (0.2, 0.5, 1.0)
    if p.opacity_mask.any():
        rgb[p.opacity_mask] = 0.65 * rgb[p.opacity_mask] + 0.35 * np.array([1.0, 0.2, 0.1])
        edge = p.opacity_mask & ~ndimage.binary_erosion(p.opacity_mask)
        rgb[edge] = (1.0, 0.15, 0.05)
    return rgb


def build_rows(seed: int, size: int) -> list[list[tuple[np.ndarray, str]]]:
    zones = phantoms.OPACITY_ZONES
    common = dict(size=size, shortcut_strength=0.5, split="neutral")
    # The first row shows clear opacities (density 0.75); the AP row keeps the sampled, often subtler, ones.
    clean = dict(portable_ap=False, device="none", opacity_density=0.75)
    pa = [
        phantoms.make_phantom(seed, index=i, label=1, opacity_zone=z, **clean, **common)
        for i, z in enumerate(zones)
    ]
    ap = [
        phantoms.make_phantom(seed, index=10 + i, label=1, opacity_zone=z, portable_ap=True, **common)
        for i, z in enumerate(zones)
    ]
    neg = [
        phantoms.make_phantom(seed, index=20 + i, label=0, portable_ap=False, device="none", **common)
        for i in range(6)
    ]
    devices = ("none", "endotracheal_tube", "central_line", "nasogastric_tube", "ecg_leads", "none")
    neg_sc = [
        phantoms.make_phantom(seed, index=30 + i, label=0, portable_ap=i < 3, device=d, **common)
        for i, d in enumerate(devices)
    ]
    small = [
        phantoms.make_phantom(seed, index=i, label=1, opacity_zone=z, **clean, size=64, split="neutral")
        for i, z in enumerate(zones)
    ]
    rows = [
        [(p.image, _title(p)) for p in pa],
        [(_overlay(p), "opacity mask (red), lungs (blue)") for p in pa],
        [(p.image, _title(p)) for p in ap],
        [(p.image, _title(p)) for p in neg],
        [(p.image, _title(p)) for p in neg_sc],
        [(p.image, "64 px: " + SHORT_ZONE[p.factors.opacity_zone]) for p in small],
    ]
    return rows


def draw_grid(out: Path, seed: int, size: int) -> None:
    rows = build_rows(seed, size)
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.3 * n_rows), dpi=110)
    for r, row in enumerate(rows):
        for c, (img, title) in enumerate(row):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.suptitle(
        f"Chest radiograph phantoms ({size} px; last row 64 px). Image left = patient right. "
        "RHB = right heart border; d = opacity density (row 1 set to 0.75, row 3 as sampled).",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def time_generation(n: int) -> None:
    """Print wall-clock and CPU time per phantom (CPU time is the fairer number on a shared machine)."""
    phantoms.make_phantom(0, size=64)  # load the lung masks and build the per-size banks first
    phantoms.make_phantom(0, size=128)
    for size in (64, 128):
        wall, cpu = time.perf_counter(), time.process_time()
        phantoms.make_phantom_dataset(n, size=size, seed=123)
        wall = (time.perf_counter() - wall) / n * 1000
        cpu = (time.process_time() - cpu) / n * 1000
        print(f"{size:4d} px: {wall:.2f} ms wall, {cpu:.2f} ms CPU per phantom ({n} phantoms, one process)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_out = Path(__file__).resolve().parents[1] / "docs" / "phantoms.png"
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--speed", type=int, default=0, help="also time this many phantoms per size")
    args = parser.parse_args()
    start = time.perf_counter()
    phantoms.load_lung_mask_bank()
    print(f"lung masks loaded in {time.perf_counter() - start:.1f} s")
    draw_grid(args.out, args.seed, args.size)
    print(f"wrote {args.out}")
    if args.speed:
        time_generation(args.speed)


if __name__ == "__main__":
    main()
