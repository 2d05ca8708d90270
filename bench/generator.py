"""Synthesis throughput of the generator, reference path against fast path, on the CPU or a GPU.

For each preset (random weights) and each synthesis path, prints images/s of ``synthesize_from_styles`` at batch
1 and at the best batch size tried, the multiply-accumulate count per image (PyTorch's FLOP counter), the
achieved fraction of the peak measured in the same run (a large matrix multiply in the same precision), and the
largest difference of the path's images from the float32 reference path. Paths:

    reference   the layers step by step as stylegan2-ada-pytorch writes them (``set_synthesis_path(fast=False)``)
    fast        the default: fused modulated conv + activation, toRGB as one batched matmul, up-sampling
                convolutions as one dense convolution + pixel shuffle on CUDA ("auto")
    transpose   fast, with transposed convolution + FIR up-sampling (the CPU's choice)
    polyphase   fast, with polyphase up-sampling also on the CPU

On CUDA every path runs in bf16 (autocast) and float32, channels-last, and ``--profile`` prints where the time
goes (self CUDA time per operator) for the reference and fast paths at the largest batch.

    .venv/bin/python bench/generator.py [--device auto|cpu|cuda[:N]] [--quick] [--presets paper256,demo64]
        [--batches 1,64,256] [--rounds 3] [--compile] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from explain_engine.device import DeviceError, autocast_for, describe_device, resolve_device
from explain_engine.stylegan2 import Generator, generator_kwargs, set_synthesis_path

PATHS = {
    "reference": dict(fast=False),
    "fast": dict(fast=True, up_mode="auto"),
    "transpose": dict(fast=True, up_mode="transpose"),
    "polyphase": dict(fast=True, up_mode="polyphase"),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, *, device: torch.device, min_seconds: float, min_reps: int = 2) -> float:
    """Median seconds per call over repetitions lasting at least ``min_seconds`` (after two warm-up calls)."""
    fn()
    fn()
    sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, min_seconds: float) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sec = timed(lambda: torch.mm(a, b), device=device, min_seconds=min_seconds)
    return 2 * n**3 / sec / 1e12


def macs_per_image(G: Generator) -> float:
    """Multiply-accumulates of one image on the reference path: the network's work, whatever a faster path
    spends on it (polyphase up-sampling spends 4x on the up-sampling layers to avoid a slow depthwise pass)."""
    s = G.styles_from_w(G.mapping.w_avg[None])
    set_synthesis_path(G, fast=False)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G.synthesize_from_styles(s)
    set_synthesis_path(G)
    return counter.get_total_flops() / 2


def make_generator(preset: str, device: torch.device) -> Generator:
    torch.manual_seed(0)
    G = Generator(**generator_kwargs(preset)).eval().requires_grad_(False)
    with torch.no_grad():  # non-zero noise strengths and biases, as a trained network has
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return G.to(device)


def synth_fn(G, s, device, bf16: bool, compiled):
    def run():
        with torch.inference_mode(), autocast_for(device, bf16=bf16):
            return (compiled or G.synthesize_from_styles)(s)

    return run


def max_difference(G, device, path: dict, bf16: bool) -> tuple[float, float]:
    """(largest |image - float32 reference image|, largest |reference image|) over 8 random style vectors.
    float32 means float32 here: TF32 convolutions and matmuls are off for this comparison."""
    torch.manual_seed(1)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _max_difference(G, device, path, bf16)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def _max_difference(G, device, path: dict, bf16: bool) -> tuple[float, float]:
    with torch.inference_mode():
        s = G.styles_from_w(G.mapping(torch.randn(8, G.z_dim, device=device)))
        set_synthesis_path(G, fast=False)
        ref = G.synthesize_from_styles(s).float()
        set_synthesis_path(G, **path)
        with autocast_for(device, bf16=bf16):
            out = G.synthesize_from_styles(s).float()
    return float((out - ref).abs().max()), float(ref.abs().max())


def profile(G, s, device, path: dict, label: str) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    set_synthesis_path(G, **path)
    run = synth_fn(G, s, device, True, None)
    run()
    sync(device)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            run()
        sync(device)
    print(f"\n[profile] {label}, batch {s.shape[0]}, bf16, 3 calls: self CUDA time per operator")
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=48))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N [auto]")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, shorter timing")
    parser.add_argument("--presets", default=None, help="comma-separated presets [CPU: all; CUDA: paper256]")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes")
    parser.add_argument("--paths", default="reference,fast,transpose")
    parser.add_argument("--compile", action="store_true", help="also time the fast path under torch.compile")
    parser.add_argument("--profile", action="store_true", help="CUDA: operator table of the fast path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds, best kept [3]")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    min_seconds = 0.5 if args.quick else (1.0 if cuda else 3.0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__}, device {describe_device(device)}"
    )
    precisions = [True, False] if cuda else [False]  # bf16 (autocast) and float32 on CUDA
    peaks = {
        bf16: matmul_peak_tflops(device, torch.bfloat16 if bf16 else torch.float32, min_seconds)
        for bf16 in precisions
    }
    for bf16, peak in peaks.items():
        print(f"measured peak ({'bf16' if bf16 else 'float32'} matmul): {peak:.2f} TFLOP/s")
    presets = (
        args.presets.split(",")
        if args.presets
        else (["paper256"] if cuda else ["paper256", "demo64", "demo128"])
    )
    default_batches = {
        "paper256": [1, 128, 512] if cuda else ([1, 4] if args.quick else [1, 2, 4, 8]),
        "demo64": [1, 256, 1024] if cuda else ([1, 16] if args.quick else [1, 4, 16, 64]),
        "demo128": [1, 256, 1024] if cuda else ([1, 16] if args.quick else [1, 4, 16, 32]),
    }
    paths = [p for p in args.paths.split(",") if p]
    for preset in presets:
        G = make_generator(preset, device)
        macs = macs_per_image(G)
        batches = [int(b) for b in args.batches.split(",")] if args.batches else default_batches[preset]
        print(
            f"\n{preset}: {G.img_resolution}px, {G.style_layout.dims} style dims, {macs / 1e9:.3f} GMAC/image"
        )
        print(
            "| path | precision | batch 1 (img/s) | best batch | img/s | TFLOP/s | % of peak | max abs diff vs fp32 reference |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        variants = [(p, bf16, False) for p in paths for bf16 in precisions]
        if args.compile:
            variants += [("fast", precisions[0], True)]  # bf16 on CUDA: compiling takes a while per shape
        # Rounds interleave the variants, and each keeps its best round: on a shared machine, load that comes
        # and goes then costs every variant alike instead of the one that happened to run during it.
        rates: dict[tuple, dict[int, float]] = {v: {} for v in variants}
        compiled_fns: dict[tuple, object] = {}
        for _ in range(args.rounds):
            for v in variants:
                name, bf16, use_compile = v
                set_synthesis_path(G, **PATHS[name])
                if use_compile and v not in compiled_fns:
                    compiled_fns[v] = torch.compile(G.synthesize_from_styles, dynamic=False)
                for b in batches:
                    with torch.inference_mode():
                        s = G.styles_from_w(G.mapping(torch.randn(b, G.z_dim, device=device)))
                    try:
                        sec = timed(
                            synth_fn(G, s, device, bf16, compiled_fns.get(v)),
                            device=device,
                            min_seconds=min_seconds / args.rounds,
                        )
                    except torch.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        continue
                    rates[v][b] = max(rates[v].get(b, 0.0), b / sec)
        for v in variants:
            name, bf16, use_compile = v
            path = PATHS[name]
            diff, scale = max_difference(G, device, path, bf16)
            best_b = max(rates[v], key=rates[v].get)
            best = rates[v][best_b]
            tflops = best * macs * 2 / 1e12
            label = name + (" (compiled)" if use_compile else "")
            prec = "bf16" if bf16 else "float32"
            print(
                f"| {label} | {prec} | {rates[v].get(1, float('nan')):.1f} | {best_b} | {best:.1f} "
                f"| {tflops:.2f} | {100 * tflops / peaks[bf16]:.1f} | {diff:.2e} (images up to {scale:.2g}) |",
                flush=True,
            )
            key = f"{preset}_{name}{'_compiled' if use_compile else ''}_{prec}"
            print(f"{key}_images_per_s_best: {best:.1f}")
            print(f"{key}_max_abs_diff: {diff:.3g}")
            print(f"{key}_max_abs_image: {scale:.3g}")
        set_synthesis_path(G)
        if args.profile and cuda:
            with torch.inference_mode():
                s = G.styles_from_w(G.mapping(torch.randn(max(batches), G.z_dim, device=device)))
            for name in ("fast",):
                profile(G, s, device, PATHS[name], f"{preset} {name}")
        set_synthesis_path(G)


if __name__ == "__main__":
    main()
