"""Speed and accuracy of the three sweep modes, side by side in one process on the same images.

naive      one perturbed style vector per generator + classifier pass, nothing reused (run on a random subset
           of dimensions, since its cost per perturbation does not depend on which dimension is perturbed)
exact      batched perturbations, block inputs reused, toRGB dimensions by their linear effect
screening  one backward pass per image, then the top-K dimensions of each image evaluated exactly

Prints perturbations/s, the ratio to naive, the largest |naive - exact| delta on the common dimensions, and
screening's recall@10 of the exact top-10 dimensions (ranked by mean |delta| over the images). The images are
style vectors of random generator samples. The last lines are machine-readable.

    .venv/bin/python bench/sweep.py [--quick] [--generator G.pt] [--classifier demo]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from explain_engine.checkpoints import load_generator
from explain_engine.classifiers import load_classifier
from explain_engine.ranges import estimate_style_ranges
from explain_engine.selection import select_dimensions
from explain_engine.stylegan2 import Generator, generator_kwargs
from explain_engine.sweep import StyleSweeper, SweepConfig, sweep_deltas

DEMO_GENERATOR = "explain_engine/assets/demo/generator.pt"


def naive_rate(G, clf, styles, low, high, dims) -> tuple[float, np.ndarray]:
    """(perturbations/s, deltas [N, len(dims), 2]) of the naive loop on ``dims``."""
    sw = StyleSweeper(G, clf, low, high, SweepConfig(mode="naive"))
    out = np.zeros((len(styles), len(dims), 2), np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(len(styles)):
            s = styles[i : i + 1]
            c0 = sw.classify(G.synthesize_from_styles(s, noise_mode="const"))[0]
            p = sw.evaluate_naive(s, dims)
            out[i, :, 0] = (c0 - p[:, 0]).numpy()
            out[i, :, 1] = (p[:, 1] - c0).numpy()
    sec = time.perf_counter() - t0
    return len(styles) * (2 * len(dims) + 1) / sec, out


def run(G, clf, *, images: int, naive_dims: int, top_k: int, seed: int, label: str) -> dict:
    torch.manual_seed(seed)
    ranges = estimate_style_ranges(G, num_samples=20_000, batch_size=1000, seed=seed)
    with torch.no_grad():
        styles = G.styles_from_w(G.mapping(torch.randn(images, G.z_dim)))
    dims = G.style_layout.dims
    rng = np.random.default_rng(seed)
    subset = sorted(rng.choice(dims, size=min(naive_dims, dims), replace=False).tolist())

    # warm-up: the first forward and backward passes of a process pay one-off allocation and set-up costs
    warm = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig())
    warm.gradient(styles[:1])
    with torch.inference_mode():
        warm.evaluate_exact(styles[:1], subset[:4])
    naive_pps, naive_deltas = naive_rate(G, clf, styles, ranges.minimum, ranges.maximum, subset)
    exact = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="exact"))
    screen = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="screening", screening_top_k=top_k))
    max_diff = float(np.abs(exact.deltas[:, subset] - naive_deltas).max())
    total = images * (2 * dims + 1)
    exact_speedup = exact.perturbations_per_second / naive_pps
    screening_speedup = (total / naive_pps) / screen.seconds
    top_exact = select_dimensions(exact.deltas, G.style_layout).top(10)
    top_screen = select_dimensions(screen.deltas, G.style_layout).top(10)
    recall = len(set(top_exact) & set(top_screen)) / 10
    print(f"[{label}] {images} images x {dims} dims, naive on {len(subset)} dims")
    print(f"  naive:     {naive_pps:9.1f} perturbations/s")
    print(f"  exact:     {exact.perturbations_per_second:9.1f} perturbations/s  ({exact_speedup:.1f}x naive)")
    print(
        f"  screening: {total / screen.seconds:9.1f} perturbations/s equivalent  ({screening_speedup:.1f}x naive), "
        f"top-{top_k} per image exact"
    )
    print(f"  max |naive - exact| delta: {max_diff:.2e}")
    print(f"  screening recall@10 of the exact top-10: {recall:.2f}")
    return dict(
        exact_speedup=exact_speedup,
        max_abs_diff=max_diff,
        screening_speedup=screening_speedup,
        recall=recall,
        naive_pps=naive_pps,
        exact_pps=exact.perturbations_per_second,
    )


def paper256_rates(clf, *, dims: int) -> None:
    """Throughput of naive and exact evaluation for paper256 (random weights) on a random subset of dimensions
    spread over all layers; a full sweep of its 7424 dimensions takes hours on a CPU."""
    torch.manual_seed(0)
    P = Generator(**generator_kwargs("paper256")).eval().requires_grad_(False)
    ranges = estimate_style_ranges(P, num_samples=2000, batch_size=500)
    with torch.no_grad():
        s = P.styles_from_w(P.mapping(torch.randn(1, P.z_dim)))
    subset = sorted(np.random.default_rng(0).choice(P.style_layout.dims, size=dims, replace=False).tolist())
    naive_pps, _ = naive_rate(P, clf, s, ranges.minimum, ranges.maximum, subset)
    sw = StyleSweeper(P, clf, ranges.minimum, ranges.maximum, SweepConfig(batch_size=16))
    t0 = time.perf_counter()
    with torch.inference_mode():
        sw.evaluate_exact(s, subset)
    exact_pps = 2 * len(subset) / (time.perf_counter() - t0)
    print(f"[paper256, random weights] 1 image, {len(subset)} random dims of {P.style_layout.dims}")
    print(
        f"  naive: {naive_pps:.2f} perturbations/s   exact: {exact_pps:.2f} perturbations/s "
        f"({exact_pps / naive_pps:.1f}x); a full exact sweep: {2 * P.style_layout.dims / exact_pps / 60:.0f} "
        f"min per image"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few images, under a minute")
    parser.add_argument("--generator", default=DEMO_GENERATOR)
    parser.add_argument("--classifier", default="demo")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--paper256", action="store_true", help="also time paper256 with random weights")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    G = load_generator(args.generator)
    clf = load_classifier(args.classifier)
    images = args.images or (1 if args.quick else 8)
    r = run(
        G, clf, images=images, naive_dims=16 if args.quick else 96, top_k=args.top_k, seed=0, label="demo"
    )
    if args.paper256:
        paper256_rates(clf, dims=16 if args.quick else 64)
    print(f"exact_speedup: {r['exact_speedup']:.2f}")
    print(f"max_abs_diff: {r['max_abs_diff']:.3g}")
    print(f"screening_speedup: {r['screening_speedup']:.2f}")
    print(f"screening_recall_at_10: {r['recall']:.2f}")


if __name__ == "__main__":
    main()
