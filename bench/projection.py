"""The demo's fidelity bar: project held-out phantoms into StyleSpace (Eq. 2) and measure the reconstructions.

The bar (docs/demo-models.md): at 500 steps, median PSNR >= 28 dB or median SSIM >= 0.9, and the classifier's
probability on the reconstruction within 0.1 of the original's for >= 90 % of the phantoms. Several optimiser
variants can be measured side by side on the same phantoms, each given as ``LR``, ``LR:std`` (``std``: Adam
steps scaled per dimension by the styles' standard deviation, see ``project_images(style_scale=...)``) and/or
``LR:alpha=A`` (the perceptual term's weight; otherwise the projection default):

    .venv/bin/python bench/projection.py [--n 50] [--steps 500] [--variants 0.05,0.2,0.05:alpha=5] [--threads 1]
        [--generator explain_engine/assets/demo/generator.pt] [--classifier demo] [--quick]

The phantoms are the generators benchmark's (stream 11, neutral split, the generator's resolution), the start is
the mean style of 20,000 samples, the other loss weights are the projection defaults. Results are saved per variant in
chunks of ``--chunk`` phantoms under ``--out``; an interrupted run, started again with the same settings, skips
the finished chunks. For scale, a reference line gives the PSNR and SSIM between each phantom and the same
factors rendered with another nuisance seed (other vessels, lobules, texture and noise). The last lines are
machine-readable, for the first variant:
``median_psnr: X``, ``median_ssim: Y``, ``prob_within_0.1: Z``, ``fidelity_bar_met: true|false``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from explain_engine.checkpoints import CheckpointError, load_discriminator, load_generator
from explain_engine.classifiers import DEMO_CLASSIFIER_PATH, load_classifier
from explain_engine.counterfactuals.base import ClampedInput
from explain_engine.demo.phantoms import make_phantom_dataset, render_phantom
from explain_engine.device import DeviceError, describe_device, resolve_device
from explain_engine.metrics.fidelity import psnr, ssim
from explain_engine.projection import ProjectionConfig, fidelity_summary, project_images
from explain_engine.ranges import StyleRanges, estimate_style_ranges

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT_SEED = 11  # the generators benchmark's stream: neither the demo classifier nor the demo GAN saw it


@dataclass(frozen=True)
class Variant:
    lr: float
    std_scaled: bool = False
    alpha: float | None = None  # None: the projection default

    def config(self, steps: int, **extra) -> ProjectionConfig:
        alpha = {} if self.alpha is None else {"alpha": self.alpha}
        return ProjectionConfig(steps=steps, lr=self.lr, **alpha, **extra)

    def name(self, config: ProjectionConfig) -> str:
        return (
            f"lr {self.lr:g}"
            + (", std-scaled steps" if self.std_scaled else "")
            + f", alpha {config.alpha:g}"
        )

    def file_stem(self, config: ProjectionConfig) -> str:
        """Names the saved chunks after the settings in force, so a changed default is not mixed up."""
        return f"lr{self.lr:g}" + ("-std" if self.std_scaled else "") + f"-alpha{config.alpha:g}"


def parse_variant(spec: str) -> Variant:
    """``"0.05"`` -> lr 0.05; ``"0.05:std"`` adds std-scaled steps; ``"0.05:alpha=5"`` sets the perceptual weight."""
    lr, *options = spec.strip().split(":")
    try:
        value = float(lr)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"variant {spec!r}: {lr!r} is not a learning rate") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"variant {spec!r}: the learning rate must be positive")
    scaled, alpha = False, None
    for option in options:
        key, _, arg = option.partition("=")
        if option == "std":
            scaled = True
        elif key == "alpha" and arg:
            try:
                alpha = float(arg)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"variant {spec!r}: alpha {arg!r} is not a number") from exc
            if alpha < 0:
                raise argparse.ArgumentTypeError(f"variant {spec!r}: alpha must be >= 0")
        else:
            raise argparse.ArgumentTypeError(
                f"variant {spec!r}: write LR, LR:std, LR:alpha=A or LR:std:alpha=A"
            )
    return Variant(value, scaled, alpha)


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _classifier_key(spec: str) -> str:
    """The file's hash for the demo classifier and checkpoint paths, so that a retrained model is not mixed up."""
    path = DEMO_CLASSIFIER_PATH if spec == "demo" else Path(spec)
    return _sha256(path) if path.is_file() else spec


def nuisance_reference(data, images: torch.Tensor, *, seed: int) -> tuple[float, float]:
    """Median PSNR and SSIM between each phantom and the same factors rendered with another nuisance seed
    (vessel branching, opacity lobules, textures, quantum noise): what a reconstruction that got every factor
    right but none of the phantom's own detail would score."""
    size = images.shape[-1]
    other = [
        render_phantom(f, size=size, seed=(seed, i, 1_000_003)).image for i, f in enumerate(data.factors)
    ]
    redrawn = torch.stack([torch.from_numpy(o) for o in other]).unsqueeze(1) * 2 - 1
    return psnr(images, redrawn).median().item(), ssim(images, redrawn).median().item()


def distribution_stats(styles: torch.Tensor, ranges: StyleRanges) -> dict[str, torch.Tensor]:
    """Per image: the mean |z| of the projected styles (distance from the sampled mean in standard deviations)
    and the share of coordinates outside the sampled min/max; the projection should stay in distribution."""
    z = (styles - ranges.mean) / ranges.std.clamp_min(1e-8)
    outside = (styles < ranges.minimum) | (styles > ranges.maximum)
    return {"abs_z": z.abs().mean(1), "outside": outside.float().mean(1)}


def _chunk_mean(chunks: list[dict], key: str) -> float:
    """Mean of a per-image value over all chunks; NaN when a chunk was saved before the value was measured."""
    if any(key not in c for c in chunks):
        return float("nan")
    return torch.cat([c[key] for c in chunks]).mean().item()


def paper256_step_times(
    device, batches: list[int], *, bf16: bool, steps: int = 40, compile_models: bool = False
) -> None:
    """Seconds per projection step (Eq. 2: MSE + perceptual on the classifier's features + classifier + D) of
    paper256 with a DenseNet-121 classifier (random weights), and the paper-scale extrapolation.

    One call per batch size: the steady step time is taken between the progress reports of steps 11 and
    ``steps`` (each report waits for the GPU), so the set-up of the first steps (cuDNN autotuning, compilation)
    is reported apart."""
    sys.path.insert(0, str(ROOT))
    from bench.sweep import DenseNetStandIn
    from explain_engine.stylegan2 import Discriminator, Generator, discriminator_kwargs, generator_kwargs

    torch.manual_seed(0)
    G = Generator(**generator_kwargs("paper256")).eval().to(device)
    D = Discriminator(**discriminator_kwargs("paper256")).eval().to(device)
    C = DenseNetStandIn().eval().to(device)
    best = None
    for b in batches:
        images = torch.rand(b, 1, 256, 256) * 2 - 1
        cfg = ProjectionConfig(steps=steps, batch_size=b, bf16_on_cuda=bf16)
        marks: dict[int, float] = {}
        t0 = time.perf_counter()
        try:
            project_images(
                images,
                G,
                classifier=C,
                D=D,
                config=cfg,
                compile_models=compile_models,
                progress_fn=lambda done, total, message, marks=marks: marks.setdefault(
                    done, time.perf_counter()
                ),
            )
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            print(f"paper256 projection, batch {b}: out of memory", flush=True)
            continue
        first, last = 11, steps
        sec = (marks[last] - marks[first]) / (last - first)
        setup = marks[first] - t0 - (first - 1) * sec
        hours = 2000 / b * 500 * sec / 3600
        print(
            f"paper256 projection, batch {b}{', bf16' if bf16 else ''}{', compiled' if compile_models else ''}: "
            f"{sec:.3f} s per step, {sec * 500 / b:.2f} s per image; 2000 images: {hours:.2f} h "
            f"(set-up{' and compilation' if compile_models else ''} of the first steps: {setup:.0f} s)",
            flush=True,
        )
        best = hours if best is None else min(best, hours)
    if best is not None:
        print(f"paper_scale_projection_hours: {best:.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="held-out phantoms [50]")
    parser.add_argument("--steps", type=int, default=500, help="projection steps [500]")
    parser.add_argument(
        "--variants",
        default="0.05",
        help="comma-separated LR[:std][:alpha=A], measured in this order; alpha defaults to ProjectionConfig's [0.05]",
    )
    parser.add_argument("--quick", action="store_true", help="4 phantoms, 30 steps: a smoke test")
    parser.add_argument("--classifier", default="demo")
    parser.add_argument("--generator", default=str(ROOT / "explain_engine/assets/demo/generator.pt"))
    parser.add_argument("--ranges", help="style-ranges file (estimated from 20,000 samples when absent)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=10, help="phantoms per saved chunk [10]")
    parser.add_argument("--out", default=str(ROOT / "var/bench/projection"))
    parser.add_argument("--json", help="also write every variant's figures to this JSON file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N [auto]")
    parser.add_argument(
        "--batch", type=int, default=None, help="images per projection batch [ProjectionConfig's]"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast of the forward passes on CUDA")
    parser.add_argument(
        "--compile", action="store_true", help="paper256 timings with compile_models=True (CUDA only)"
    )
    parser.add_argument(
        "--paper256-only", action="store_true", help="only the paper256 timings, not the demo's fidelity"
    )
    parser.add_argument(
        "--paper256-batches",
        default="",
        help="also time projection steps of paper256 + DenseNet-121 + D (random weights) at these batch sizes "
        "and print paper_scale_projection_hours (2000 images x 500 steps)",
    )
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        parser.error(str(exc))
    try:
        variants = [parse_variant(v) for v in args.variants.split(",") if v.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not variants:
        parser.error("--variants is empty")
    if args.n < 1 or args.steps < 1 or args.chunk < 1:
        parser.error("--n, --steps and --chunk must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    n, steps = (4, 30) if args.quick else (args.n, args.steps)

    print(f"device: {describe_device(device)}, torch {torch.__version__}", file=sys.stderr)
    if args.paper256_batches:
        paper256_step_times(
            device,
            [int(b) for b in args.paper256_batches.split(",")],
            bf16=args.bf16,
            compile_models=args.compile,
        )
        if args.paper256_only:
            return 0
    classifier = ClampedInput(load_classifier(args.classifier)).to(device)
    G = load_generator(args.generator).to(device)
    try:
        D = load_discriminator(args.generator).to(device)
    except CheckpointError:
        D = None
    data = make_phantom_dataset(n, size=G.img_resolution, seed=args.seed, split="neutral")
    images = torch.from_numpy(data.images_float()).unsqueeze(1) * 2 - 1
    ranges = (
        StyleRanges.load(args.ranges)
        if args.ranges
        else estimate_style_ranges(G, num_samples=2000 if args.quick else 20_000, seed=0)
    )
    key = {
        "n": n,
        "steps": steps,
        "seed": args.seed,
        "generator": _sha256(args.generator),
        "classifier": _classifier_key(args.classifier),
        "ranges": _sha256(args.ranges) if args.ranges else "estimated",
        "device": device.type,
        "batch": args.batch,
        "bf16": args.bf16,
    }
    run_dir = Path(args.out) / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(key, indent=1))
    print(
        f"{n} phantoms at {G.img_resolution}px (stream {args.seed}, neutral split), {steps} steps, "
        f"D {'on' if D is not None else 'absent'}; results in {run_dir}",
        file=sys.stderr,
    )

    results = []
    for variant in variants:
        extra = {"bf16_on_cuda": args.bf16}
        if args.batch:
            extra["batch_size"] = args.batch
        config = variant.config(steps, **extra)
        name = variant.name(config) + (", bf16" if args.bf16 and device.type == "cuda" else "")
        chunks = []
        for start in range(0, n, args.chunk):
            stop = min(n, start + args.chunk)
            path = run_dir / f"{variant.file_stem(config)}-{start:04d}-{stop:04d}.pt"
            if path.exists():
                chunks.append(torch.load(path, weights_only=True))
                continue
            t0 = time.time()
            res = project_images(
                images[start:stop],
                G,
                classifier=classifier,
                D=D,
                init_styles=ranges.mean,
                style_scale=ranges.std.clamp_min(1e-6) if variant.std_scaled else None,
                config=config,
                progress_fn=lambda d, t, m, name=name: (
                    print(f"  [{name}] {m}", file=sys.stderr, flush=True) if d % 100 == 1 or d == t else None
                ),
            )
            chunk = {
                "psnr": res.psnr,
                "ssim": res.ssim,
                "prob_original": res.prob_original,
                "prob_reconstruction": res.prob_reconstruction,
                "seconds": time.time() - t0,
                **distribution_stats(res.styles, ranges),
            }
            tmp = path.with_suffix(".tmp")
            torch.save(chunk, tmp)
            tmp.replace(path)
            chunks.append(chunk)
            print(f"  [{name}] phantoms {start + 1}-{stop} of {n} done", file=sys.stderr, flush=True)
        summary = fidelity_summary(
            *(
                torch.cat([c[k] for c in chunks])
                for k in ("psnr", "ssim", "prob_original", "prob_reconstruction")
            )
        )
        summary.update(
            variant=name,
            lr=variant.lr,
            std_scaled=variant.std_scaled,
            alpha=config.alpha,
            seconds_per_image=sum(c["seconds"] for c in chunks) / n,
            mean_abs_z=_chunk_mean(chunks, "abs_z"),
            outside_range=_chunk_mean(chunks, "outside"),
        )
        results.append(summary)

    print(
        "\n| variant | median PSNR (dB) | median SSIM | share with \\|dP\\| <= 0.1 | max \\|dP\\| | bar met "
        "| mean \\|z\\| | outside min/max | s/image |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['variant']} | {r['median_psnr']:.2f} | {r['median_ssim']:.3f} | {r['prob_within_0.1']:.0%} "
            f"| {r['max_prob_diff']:.4f} | {'yes' if r['bar_met'] else 'no'} | {r['mean_abs_z']:.3f} "
            f"| {r['outside_range']:.3%} | {r['seconds_per_image']:.1f} |"
        )
    ref_psnr, ref_ssim = nuisance_reference(data, images, seed=args.seed)
    print(
        f"\nreference: the same factors rendered with another nuisance seed score median PSNR {ref_psnr:.2f} dB, "
        f"SSIM {ref_ssim:.3f} against these phantoms"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "settings": key,
                    "variants": results,
                    "nuisance_reference": {"median_psnr": ref_psnr, "median_ssim": ref_ssim},
                },
                indent=1,
            )
        )
    first = results[0]
    print(f"median_psnr: {first['median_psnr']:.4f}")
    print(f"median_ssim: {first['median_ssim']:.4f}")
    print(f"prob_within_0.1: {first['prob_within_0.1']:.4f}")
    print(f"fidelity_bar_met: {'true' if first['bar_met'] else 'false'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
