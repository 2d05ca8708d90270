"""Speed and accuracy of the sweep modes, side by side in one process on the same images, on the CPU or a GPU.

naive      one perturbed style vector per generator + classifier pass at batch 1, nothing reused (on a random
           subset of dimensions: its cost per perturbation does not depend on which dimension is perturbed)
plain      the plain batched loop: full generator + classifier passes over batches of perturbed style vectors,
           at the best batch size tried (bf16 autocast on CUDA)
exact      ``sweep_deltas`` exact: each conv layer's linear part reused and updated for the one changed channel,
           toRGB dimensions by their linear effect, perturbations of a unit's images pooled; with
           ``--reuse-block`` also timed with passes starting at the perturbed layer's block (the earlier design)
screening  one backward pass per image, then the top-K dimensions of each image evaluated exactly

Two parts:

* **demo** (the shipped demo generator and classifier): all modes on ``--images`` style vectors, the largest
  |naive - exact| delta, and screening's recall@10 of the exact top-10 dimensions (ranked by mean |delta| over the
  images). ``--phantoms`` projects that many held-out phantoms (stream 11) first and sweeps their styles;
  without it the style vectors are random generator samples.
* **paper256** (``--paper256``; random weights, 7424 dims) with a DenseNet-121 classifier at 224 px (torchvision
  architecture, random weights, one input channel: the cost of the TorchXRayVision DenseNet): naive, the plain
  batched loop, exact on whole images and screening; the largest difference of the exact deltas (bf16 on CUDA)
  from float32 naive ones; and the paper-scale extrapolation (2000 images x 7424 dims) from the measured rates.

The last lines are machine-readable.

    .venv/bin/python bench/sweep.py [--device auto|cpu|cuda[:N]] [--quick] [--images 8] [--phantoms 200]
        [--paper256] [--paper-images 4] [--screening-images 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from explain_engine.checkpoints import load_generator
from explain_engine.classifiers import load_classifier
from explain_engine.device import DeviceError, autocast_for, describe_device, resolve_device
from explain_engine.ranges import estimate_style_ranges
from explain_engine.selection import select_dimensions
from explain_engine.stylegan2 import Generator, generator_kwargs
from explain_engine.sweep import StyleSweeper, SweepConfig, refine_screening, sweep_deltas

DEMO_GENERATOR = "explain_engine/assets/demo/generator.pt"
PAPER_IMAGES, PAPER_DIMS = 2000, 7424


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DenseNetStandIn(torch.nn.Module):
    """DenseNet-121 at 224 px with one input channel and one output: the TorchXRayVision classifier's cost."""

    def __init__(self):
        super().__init__()
        from torchvision.models import densenet121

        self.net = densenet121(weights=None, num_classes=1)
        self.net.features.conv0 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)

    def forward(self, x):
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.net(x)[:, 0])

    def feature_layer_names(self) -> list[str]:
        return ["denseblock1", "denseblock2"]

    def features(self, x) -> dict[str, torch.Tensor]:
        """Intermediate features, for the projection's perceptual term (as the real adapters offer)."""
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        out = {}
        for name, layer in self.net.features.named_children():
            x = layer(x)
            if name in ("denseblock1", "denseblock2"):
                out[name] = x
            if name == "denseblock2":
                return out
        return out


def flop_ceiling(G, clf, *, name: str) -> float:
    """GFLOP per perturbation of the plain loop (whole generator + classifier) and of the exact sweep as it runs
    (``StyleSweeper.evaluate`` of one perturbation per style layer, weighted by the layer's dimensions), with
    passes starting at the perturbed layer (the default) and at its block, counted with PyTorch's FLOP counter
    on the CPU for one image. The ratio is the most the exact sweep can gain over the plain loop by reusing
    work; prints both and returns the default's."""
    from torch.utils.flop_counter import FlopCounterMode

    G = G.cpu().eval()
    clf = clf.cpu().eval()
    with torch.no_grad():
        s = G.styles_from_w(G.mapping(torch.randn(1, G.z_dim)))

    def gflop(fn) -> float:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / 1e9

    ratios = {}
    for reuse in ("layer", "block"):
        sweeper = StyleSweeper(G, clf, s[0] - 1, s[0] + 1, SweepConfig(), reuse=reuse)
        with torch.no_grad():
            cache = sweeper.base_pass(s)
        classifier = gflop(lambda c=cache: clf(c["image"].clamp(-1, 1)))
        plain = gflop(lambda: G.synthesize_from_styles(s, noise_mode="const")) + classifier
        per_dim = np.zeros(G.style_layout.dims)
        for layer in G.style_layout:
            cost = gflop(
                lambda c=cache, sw=sweeper, d=layer.offset: sw.evaluate(c, [0], [d], s[0, d : d + 1] + 0.5)
            )
            per_dim[layer.offset : layer.stop] = cost
        exact = float(per_dim.mean())
        ratios[reuse] = plain / exact
        print(
            f"[{name}] GFLOP per perturbation: plain {plain - classifier:.3f} + {classifier:.3f} = {plain:.3f}; "
            f"exact, passes starting at the {reuse} (mean over {len(per_dim)} dims) {exact - classifier:.3f} + "
            f"{classifier:.3f} = {exact:.3f}; ceiling of exact / plain: {plain / exact:.2f}x"
        )
    return ratios["layer"]


def naive_rate(G, clf, styles, low, high, dims, device) -> tuple[float, np.ndarray]:
    """(perturbations/s, deltas [N, len(dims), 2]) of the naive loop (batch 1, float32) on ``dims``."""
    sw = StyleSweeper(G, clf, low, high, SweepConfig(mode="naive", bf16_on_cuda=False))
    out = np.zeros((len(styles), len(dims), 2), np.float32)
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(len(styles)):
            s = styles[i : i + 1]
            c0 = sw.classify(G.synthesize_from_styles(s, noise_mode="const"))[0]
            p = sw.evaluate_naive(s, dims)
            out[i, :, 0] = (c0 - p[:, 0]).cpu().numpy()
            out[i, :, 1] = (p[:, 1] - c0).cpu().numpy()
    sync(device)
    sec = time.perf_counter() - t0
    return len(styles) * (2 * len(dims) + 1) / sec, out


def plain_batched_rate(
    G, clf, s, low, high, dims, batches, device, *, seconds: float, bf16: bool = True, compiled: bool = False
) -> tuple[float, int]:
    """Best (perturbations/s, batch) of the plain batched loop: full G + classifier per perturbed vector
    (``compiled``: both under ``torch.compile`` for the fixed batch shape, compiled before the timing)."""
    best = (0.0, 0)
    dims_t = torch.as_tensor(dims, device=device)
    synth = G.synthesize_from_styles
    classify = clf
    if compiled:
        synth = torch.compile(G.synthesize_from_styles, dynamic=False)
        classify = torch.compile(clf, dynamic=False)
    for b in batches:
        reps = max(1, b // len(dims) + 1)
        rows = dims_t.repeat(reps)[:b]
        batch = s.expand(b, -1).clone()
        batch[torch.arange(b, device=device), rows] = high.to(device)[rows]

        def run(batch=batch):
            with torch.inference_mode(), autocast_for(device, bf16=bf16):
                img = synth(batch, noise_mode="const")
                if device.type == "cuda":
                    img = img.contiguous(memory_format=torch.channels_last)
                return classify(img.clamp(-1, 1)).float()

        try:
            run()
            sync(device)
            n, t0 = 0, time.perf_counter()
            while n == 0 or time.perf_counter() - t0 < seconds:
                run()
                n += b
            sync(device)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            continue
        rate = n / (time.perf_counter() - t0)
        best = max(best, (rate, b))
    return best


def demo_styles(G, clf, args, device) -> tuple[torch.Tensor, str]:
    if not args.phantoms:
        with torch.no_grad():
            return G.styles_from_w(
                G.mapping(torch.randn(args.images, G.z_dim, device=device))
            ), "random samples"
    from explain_engine.demo.phantoms import make_phantom_dataset
    from explain_engine.projection import ProjectionConfig, project_images

    data = make_phantom_dataset(args.phantoms, size=G.img_resolution, seed=11, split="neutral")
    images = torch.from_numpy(data.images_float()).unsqueeze(1) * 2 - 1
    ranges = estimate_style_ranges(G, num_samples=20_000, seed=0)
    t0 = time.perf_counter()
    res = project_images(
        images, G, classifier=clf, init_styles=ranges.mean, config=ProjectionConfig(batch_size=len(images))
    )
    print(
        f"  projected {len(images)} phantoms in {time.perf_counter() - t0:.1f} s, median PSNR {res.summary()['median_psnr']:.2f} dB"
    )
    return res.styles.to(device), f"{args.phantoms} held-out phantoms (stream 11), projected"


def run_demo(args, device) -> dict:
    G = load_generator(args.generator).to(device)
    clf = load_classifier(args.classifier).to(device)
    torch.manual_seed(0)
    styles, source = demo_styles(G, clf, args, device)
    ranges = estimate_style_ranges(G, num_samples=20_000, batch_size=1000, seed=0)
    low, high = ranges.minimum, ranges.maximum
    dims = G.style_layout.dims
    rng = np.random.default_rng(0)
    subset = sorted(rng.choice(dims, size=min(args.naive_dims, dims), replace=False).tolist())
    n_naive = min(len(styles), 2 if device.type == "cuda" else len(styles))
    cuda = device.type == "cuda"
    big = dict(batch_size=1024, image_chunk=32, dim_chunk=dims) if cuda else {}
    big["bf16_on_cuda"] = not args.demo_fp32
    # warm-up: the first passes of a process pay one-off allocation and set-up costs
    warm = StyleSweeper(G, clf, low.to(device), high.to(device), SweepConfig(**big))
    warm.gradient(styles[:1])
    with torch.inference_mode():
        warm.evaluate_exact(styles[:1], subset[:4])
    naive_pps, naive_deltas = naive_rate(G, clf, styles[:n_naive], low, high, subset, device)
    plain_pps, plain_b = plain_batched_rate(
        G,
        clf,
        styles[:1],
        low,
        high,
        subset,
        [16, 64, 256, 1024] if cuda else [16, 64],
        device,
        seconds=1.0 if cuda else 3.0,
        bf16=not args.demo_fp32,
    )
    exact = sweep_deltas(G, clf, styles, ranges, config=SweepConfig(mode="exact", **big))
    block_start = None
    if args.reuse_block:
        block_start = sweep_deltas(
            G, clf, styles, ranges, config=SweepConfig(mode="exact", **big), reuse="block"
        )
    top_ks = [int(k) for k in str(args.top_k).split(",")]
    screens = {
        k: sweep_deltas(
            G, clf, styles, ranges, config=SweepConfig(mode="screening", screening_top_k=k, **big)
        )
        for k in top_ks
    }
    max_diff = float(np.abs(exact.deltas[:n_naive, subset] - naive_deltas).max())
    total = len(styles) * (2 * dims + 1)
    top_exact = select_dimensions(exact.deltas, G.style_layout).top(10)
    recalls = {
        k: len(set(top_exact) & set(select_dimensions(res.deltas, G.style_layout).top(10))) / 10
        for k, res in screens.items()
    }
    recall = recalls[top_ks[0]]
    prec = "float32" if args.demo_fp32 or not cuda else "bf16"
    print(
        f"[demo, {prec}] {len(styles)} images ({source}) x {dims} dims; naive on {len(subset)} dims of {n_naive} images"
    )
    print(f"  naive (batch 1, fp32): {naive_pps:9.1f} perturbations/s")
    print(f"  plain batched (b {plain_b}):  {plain_pps:9.1f} perturbations/s")
    print(
        f"  exact:                 {exact.perturbations_per_second:9.1f} perturbations/s  ({exact.perturbations_per_second / plain_pps:.2f}x plain, {exact.perturbations_per_second / naive_pps:.1f}x naive)"
    )
    if block_start is not None:
        pps = block_start.perturbations_per_second
        print(
            f"  exact, block starts:   {pps:9.1f} perturbations/s  ({pps / plain_pps:.2f}x plain; layer starts "
            f"{exact.perturbations_per_second / pps:.2f}x this; largest |layer - block| delta "
            f"{float(np.abs(exact.deltas - block_start.deltas).max()):.2e})"
        )
    for k, res in screens.items():
        print(
            f"  screening, top {k}:      {total / res.seconds:9.1f} perturbations/s equivalent, top-{k} per image exact, "
            f"{res.seconds / len(styles) * 1000:.1f} ms per image, recall@10 of the exact top-10 {recalls[k]:.2f}"
        )
        if args.refine:
            deltas, mask = res.deltas.copy(), res.exact_mask.copy()
            candidates = select_dimensions(deltas, G.style_layout).top(args.refine)
            t0 = time.perf_counter()
            extra = refine_screening(
                G, clf, styles, ranges, deltas, mask, candidates, config=SweepConfig(mode="screening", **big)
            )
            seconds = time.perf_counter() - t0
            refined = len(set(top_exact) & set(select_dimensions(deltas, G.style_layout).top(10))) / 10
            print(
                f"    + the top {args.refine} screened dimensions exact on every image: {extra} more perturbations, "
                f"{(res.seconds + seconds) / len(styles) * 1000:.1f} ms per image in all, recall@10 {refined:.2f}"
            )
    print(f"  max |naive - exact| delta: {max_diff:.2e}")
    print(f"  screening recall@10 of the exact top-10 (top {top_ks[0]}): {recall:.2f}")
    return dict(
        exact_vs_plain=exact.perturbations_per_second / plain_pps,
        exact_speedup=exact.perturbations_per_second / naive_pps,
        max_abs_diff=max_diff,
        recall=recall,
    )


def run_paper256(args, device) -> None:
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    P = Generator(**generator_kwargs("paper256")).eval().requires_grad_(False).to(device)
    clf = DenseNetStandIn().eval().requires_grad_(False).to(device)
    if cuda:
        clf = clf.to(memory_format=torch.channels_last)
    ranges = estimate_style_ranges(P, num_samples=2000, batch_size=500)
    low, high = ranges.minimum.to(device), ranges.maximum.to(device)
    n_img = args.paper_images
    with torch.no_grad():
        styles = P.styles_from_w(
            P.mapping(torch.randn(max(n_img, args.screening_images), P.z_dim, device=device))
        )
    dims = P.style_layout.dims
    subset = sorted(np.random.default_rng(0).choice(dims, size=args.naive_dims, replace=False).tolist())
    naive_pps, naive_deltas = naive_rate(P, clf, styles[:1], low, high, subset, device)
    plain_pps, plain_b = plain_batched_rate(
        P,
        clf,
        styles[:1],
        low,
        high,
        subset,
        [64, 128, 256, 512] if cuda else [4, 16],
        device,
        seconds=2.0 if cuda else 5.0,
    )
    print(f"[paper256 + DenseNet-121 224px, random weights] device {describe_device(device)}")
    print(f"  naive (batch 1, fp32):  {naive_pps:9.1f} perturbations/s")
    print(f"  plain batched (bf16 on CUDA, best batch {plain_b}): {plain_pps:9.1f} perturbations/s")
    plain_c_pps = 0.0
    if cuda and args.plain_compiled:
        plain_c_pps, _ = plain_batched_rate(
            P, clf, styles[:1], low, high, subset, [plain_b], device, seconds=2.0, compiled=True
        )
        print(f"  plain batched, compiled (bf16, batch {plain_b}): {plain_c_pps:9.1f} perturbations/s")
    results = {}
    batch_sizes = [int(b) for b in args.paper_batches.split(",")] if cuda else [16]
    for bs in batch_sizes:
        cfg = SweepConfig(mode="exact", batch_size=bs, image_chunk=n_img, dim_chunk=dims if cuda else 64)
        s_run = styles[:n_img] if cuda else styles[:1]
        if cuda:
            # warm-up on the same images: cuDNN's autotuning of each batch shape is a one-off cost of a process
            sweep_deltas(P, clf, s_run, (low, high), config=cfg)
            res = sweep_deltas(P, clf, s_run, (low, high), config=cfg)
        else:  # a CPU cannot sweep 7424 dims of a 256 px image in a benchmark: time the exact path on the subset
            for reuse in ("layer", "block") if args.reuse_block else ("layer",):
                sw = StyleSweeper(P, clf, low, high, cfg, reuse=reuse)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    sw.evaluate_exact(s_run, subset)
                rate = 2 * len(subset) / (time.perf_counter() - t0)
                if reuse == "layer":
                    results[bs] = rate
                else:
                    print(
                        f"  exact, block starts, batch {bs}: {rate:9.1f} perturbations/s on {len(subset)} dims"
                    )
            continue
        results[bs] = res.perturbations_per_second
        last = res
        print(
            f"  exact, batch {bs}: {res.perturbations_per_second:9.1f} perturbations/s over {n_img} images x {dims} dims ({res.seconds:.1f} s)"
        )
        if args.reuse_block:
            sweep_deltas(P, clf, s_run, (low, high), config=cfg, reuse="block")
            blk = sweep_deltas(P, clf, s_run, (low, high), config=cfg, reuse="block")
            print(
                f"  exact, block starts, batch {bs}: {blk.perturbations_per_second:9.1f} perturbations/s "
                f"(layer starts {res.perturbations_per_second / blk.perturbations_per_second:.2f}x this; "
                f"largest |layer - block| delta {float(np.abs(res.deltas - blk.deltas).max()):.2e})"
            )
    best_bs = max(results, key=results.get)
    exact_pps = results[best_bs]
    diff = float("nan")
    if cuda:
        diff = float(np.abs(last.deltas[0, subset] - naive_deltas[0]).max())
    print(
        f"  exact (best batch {best_bs}): {exact_pps:9.1f} perturbations/s = {exact_pps / plain_pps:.2f}x the plain batched loop, {exact_pps / naive_pps:.1f}x naive"
    )
    print(f"  largest |exact (bf16 on CUDA) - naive fp32| delta on {len(subset)} dims: {diff:.2e}")
    compiled_pps = float("nan")
    if cuda and args.compile:
        cfg = SweepConfig(mode="exact", batch_size=best_bs, image_chunk=n_img, dim_chunk=dims)
        t0 = time.perf_counter()
        sweep_deltas(P, clf, styles[:n_img], (low, high), config=cfg, compile_models=True)  # compiles
        compile_s = time.perf_counter() - t0
        res = sweep_deltas(P, clf, styles[:n_img], (low, high), config=cfg, compile_models=True)
        compiled_pps = res.perturbations_per_second
        c_diff = float(np.abs(res.deltas - last.deltas).max())
        c_naive = float(np.abs(res.deltas[0, subset] - naive_deltas[0]).max())
        print(
            f"  exact, compiled (batch {best_bs}): {compiled_pps:9.1f} perturbations/s = {compiled_pps / plain_pps:.2f}x the plain batched loop"
            + (f", {compiled_pps / plain_c_pps:.2f}x the compiled plain loop" if plain_c_pps else "")
            + f" (first call with compilation {compile_s:.0f} s); largest |compiled - eager| delta {c_diff:.2e}, "
            f"|compiled - naive fp32| {c_naive:.2e}"
        )
        print(f"paper256_exact_compiled_perturbations_per_s: {compiled_pps:.1f}")
        print(
            f"paper_scale_exact_compiled_hours: {PAPER_IMAGES * (2 * PAPER_DIMS + 1) / compiled_pps / 3600:.2f}"
        )
    paper_exact_h = PAPER_IMAGES * (2 * PAPER_DIMS + 1) / exact_pps / 3600
    screening_s_per_image = float("nan")
    if cuda and args.screening_images:
        m = args.screening_images
        top_k = int(str(args.top_k).split(",")[0])
        cfg = SweepConfig(
            mode="screening", batch_size=best_bs, image_chunk=args.screening_chunk, screening_top_k=top_k
        )
        for compiled in (False, True) if args.compile else (False,):
            # warm-up on one chunk, then timed on the others (the set-up of a process is paid once per sweep)
            sweep_deltas(
                P, clf, styles[: args.screening_chunk], (low, high), config=cfg, compile_models=compiled
            )
            res = sweep_deltas(P, clf, styles[:m], (low, high), config=cfg, compile_models=compiled)
            per_image = res.seconds / m
            screening_s_per_image = min(screening_s_per_image, per_image) if compiled else per_image
            print(
                f"  screening{', compiled' if compiled else ''} (top-{top_k} exact per image, {args.screening_chunk} images per unit): "
                f"{per_image * 1000:.1f} ms per image over {m} images = {PAPER_IMAGES * per_image / 60:.1f} min for {PAPER_IMAGES}"
            )
    paper_screen_h = PAPER_IMAGES * screening_s_per_image / 3600
    print(f"paper_scale_exact_hours: {paper_exact_h:.2f}")
    print(f"paper_scale_screening_hours: {paper_screen_h:.3f}")
    print(f"paper256_exact_vs_plain: {exact_pps / plain_pps:.2f}")
    print(f"paper256_exact_perturbations_per_s: {exact_pps:.1f}")
    print(f"paper256_plain_perturbations_per_s: {plain_pps:.1f}")
    print(f"paper256_max_abs_diff_vs_fp32_naive: {diff:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N [auto]")
    parser.add_argument("--quick", action="store_true", help="a few images, under a minute on a CPU")
    parser.add_argument("--generator", default=DEMO_GENERATOR)
    parser.add_argument("--classifier", default="demo")
    parser.add_argument("--images", type=int, default=None, help="demo style vectors [CPU 8, quick 1]")
    parser.add_argument("--phantoms", type=int, default=0, help="project this many held-out phantoms instead")
    parser.add_argument(
        "--top-k",
        default="64",
        help="screening's exact dimensions per image; a list gives recall for each [64]",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="paper256 on CUDA: also time the sweep with compile_models=True",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=0,
        help="demo: also make the top N screened dimensions exact on every image and give recall@10 after it",
    )
    parser.add_argument(
        "--flops",
        action="store_true",
        help="only count the FLOPs per perturbation of the plain loop and the exact sweep (demo, and paper256 "
        "with --paper256) and print the ceiling of their ratio",
    )
    parser.add_argument(
        "--plain-compiled", action="store_true", help="paper256 on CUDA: also time the plain loop compiled"
    )
    parser.add_argument(
        "--reuse-block",
        action="store_true",
        help="also time the exact sweep with perturbed passes starting at the block (reuse='block')",
    )
    parser.add_argument("--naive-dims", type=int, default=None)
    parser.add_argument("--paper256", action="store_true", help="also time paper256 with a DenseNet-121")
    parser.add_argument("--demo-fp32", action="store_true", help="demo part on CUDA in float32, not bf16")
    parser.add_argument("--paper-only", action="store_true", help="skip the demo part")
    parser.add_argument("--paper-images", type=int, default=4, help="paper256: images of the exact sweep [4]")
    parser.add_argument("--paper-batches", default="512,1024", help="paper256 on CUDA: exact batch sizes")
    parser.add_argument("--screening-images", type=int, default=64)
    parser.add_argument("--screening-chunk", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    args.images = args.images or (1 if args.quick else 8)
    args.naive_dims = args.naive_dims or (16 if args.quick else 96 if device.type == "cpu" else 32)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"device {describe_device(device)}"
    )
    if args.flops:
        print(
            f"flop_ceiling_demo: {flop_ceiling(load_generator(args.generator), load_classifier(args.classifier), name='demo'):.2f}"
        )
        if args.paper256:
            paper = Generator(**generator_kwargs("paper256"))
            print(
                f"flop_ceiling_paper256: {flop_ceiling(paper, DenseNetStandIn(), name='paper256 + DenseNet-121'):.2f}"
            )
        return
    if not args.paper_only:
        r = run_demo(args, device)
        print(f"exact_vs_plain: {r['exact_vs_plain']:.2f}")
        print(f"exact_speedup: {r['exact_speedup']:.2f}")
        print(f"max_abs_diff: {r['max_abs_diff']:.3g}")
        print(f"screening_recall_at_10: {r['recall']:.2f}")
    if args.paper256 or args.paper_only:
        run_paper256(args, device)


if __name__ == "__main__":
    main()
