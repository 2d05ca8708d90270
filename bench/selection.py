"""Speed of dimension selection with bootstrap intervals on a paper-scale sweep, on the CPU.

Synthetic deltas [N, D, 2] (heavy-tailed, most dimensions without effect, a few strong ones) stand in for a
sweep of N held-out images x D style dimensions; the bootstrap does not depend on their values. Times
``select_dimensions`` without resampling (the point estimates alone), ``bootstrap_effects`` alone, and
``select_dimensions`` with ``--resamples`` resamples under both rules, with their selection and borderline counts.

    .venv/bin/python bench/selection.py [--images 2000] [--dims 7424] [--resamples 1000]

(``OMP_NUM_THREADS=1`` before the command keeps the matrix products on one core.)

The last line is machine-readable: ``selection_bootstrap_seconds: X`` (the bootstrap alone).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from explain_engine.selection import bootstrap_effects, select_dimensions
from explain_engine.stylegan2 import StyleLayer, StyleLayout


def synthetic_deltas(images: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = rng.gamma(0.5, 0.02, size=dims).astype(np.float32)
    scale[rng.choice(dims, 10, replace=False)] = np.linspace(0.1, 0.5, 10)
    return (rng.standard_t(3, size=(images, dims, 2)).astype(np.float32) * scale[None, :, None]).clip(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--dims", type=int, default=7424)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    layout = StyleLayout([StyleLayer("all", 0, 4, "conv", args.dims, 0, 0)])
    deltas = synthetic_deltas(args.images, args.dims)
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, BLAS threads {threads}; numpy {np.__version__}"
    )
    print(f"deltas: {args.images} images x {args.dims} dims x 2 directions")
    t0 = time.perf_counter()
    select_dimensions(deltas, layout, delta=0.1, resamples=0)
    point = time.perf_counter() - t0
    print(f"point estimates only: {point:.2f} s")
    t0 = time.perf_counter()
    bootstrap_effects(deltas, delta=0.1, resamples=args.resamples)
    bootstrap = time.perf_counter() - t0
    print(f"bootstrap alone ({args.resamples} resamples, intervals and frequencies): {bootstrap:.2f} s")
    seconds = {}
    for rule in ("estimate", "interval"):
        t0 = time.perf_counter()
        sel = select_dimensions(deltas, layout, delta=0.1, rule=rule, resamples=args.resamples)
        seconds[rule] = time.perf_counter() - t0
        print(
            f"rule {rule}, {args.resamples} resamples: {seconds[rule]:.2f} s; "
            f"{len(sel.selected)} selected, {len(sel.borderline)} borderline"
        )
    print(f"selection_bootstrap_seconds: {bootstrap:.2f}")


if __name__ == "__main__":
    main()
