"""Synthesis throughput of the generator on this machine.

For the paper256 configuration (random weights) and the demo configuration, prints images/s of
``synthesize_from_styles`` at batch 1 and at the best batch size tried, the multiply-accumulate count per image
(counted by PyTorch's FLOP counter), and the achieved fraction of this CPU's peak, where the peak is measured
in the same run as the throughput of a large float32 matrix multiply.

    .venv/bin/python bench/generator.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from explain_engine.stylegan2 import Generator, generator_kwargs


def timed(fn, *, min_seconds: float, min_reps: int = 2) -> float:
    """Median seconds per call over repetitions lasting at least ``min_seconds`` (after one warm-up call)."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def matmul_peak_gflops(n: int = 2048, min_seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    sec = timed(lambda: torch.mm(a, b), min_seconds=min_seconds)
    return 2 * n**3 / sec / 1e9


def macs_per_image(G: Generator) -> float:
    s = G.styles_from_w(G.mapping.w_avg[None])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G.synthesize_from_styles(s)
    return counter.get_total_flops() / 2


def bench(preset: str, batches: list[int], min_seconds: float) -> dict:
    torch.manual_seed(0)
    G = Generator(**generator_kwargs(preset)).eval().requires_grad_(False)
    macs = macs_per_image(G)
    rates = {}
    with torch.inference_mode():
        for b in batches:
            s = G.styles_from_w(G.mapping(torch.randn(b, G.z_dim)))
            sec = timed(lambda s=s: G.synthesize_from_styles(s), min_seconds=min_seconds)
            rates[b] = b / sec
    return {
        "preset": preset,
        "resolution": G.img_resolution,
        "style_dims": G.style_layout.dims,
        "macs": macs,
        "rates": rates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, shorter timing")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    min_seconds = 0.5 if args.quick else 3.0
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    peak = matmul_peak_gflops(min_seconds=min_seconds)
    print(f"measured peak (float32 2048x2048 matmul): {peak:.1f} GFLOP/s")
    plans = {
        "paper256": [1, 4] if args.quick else [1, 2, 4, 8],
        "demo64": [1, 16] if args.quick else [1, 4, 16, 64],
        "demo128": [1, 16] if args.quick else [1, 4, 16, 32],
    }
    for preset, batches in plans.items():
        r = bench(preset, batches, min_seconds)
        best_b = max(r["rates"], key=r["rates"].get)
        best = r["rates"][best_b]
        achieved = best * r["macs"] * 2 / 1e9
        print(
            f"{preset}: {r['resolution']}px, {r['style_dims']} style dims, {r['macs'] / 1e9:.3f} GMAC/image"
        )
        print(f"  batch 1: {r['rates'][1]:.2f} images/s")
        print(
            f"  best batch {best_b}: {best:.2f} images/s = {achieved:.1f} GFLOP/s = "
            f"{100 * achieved / peak:.0f}% of the measured peak"
        )
        print(f"{preset}_images_per_s_batch1: {r['rates'][1]:.3f}")
        print(f"{preset}_images_per_s_best: {best:.3f}")


if __name__ == "__main__":
    main()
