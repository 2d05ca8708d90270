"""Commands of the explanation pipeline (papers/003): ``ranges``, ``project``, ``sweep``, ``select``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..selection import AGGREGATES, RULES, SelectionConfig
from ..sweep import SweepConfig
from .common import TqdmProgress, add_compile_argument, add_device_argument, command, load_models


def _ranges_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("generator", help="generator checkpoint (.pkl or .pt)")
    p.add_argument("--out", required=True, help="style-ranges file to write (.pt)")
    p.add_argument(
        "--samples", type=int, default=100_000, help="random samples (default 100000, as the paper)"
    )
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)


@command("ranges", "estimate min/max/mean/std/percentiles of every style dimension", _ranges_args)
def _ranges(args: argparse.Namespace) -> int:
    from ..checkpoints import load_generator
    from ..ranges import estimate_style_ranges

    G = load_generator(args.generator, device=args.device)
    bar = TqdmProgress("ranges", unit="sample")
    r = estimate_style_ranges(
        G,
        num_samples=args.samples,
        batch_size=args.batch,
        truncation_psi=args.truncation,
        seed=args.seed,
        progress_fn=bar,
    )
    bar.close()
    r.save(args.out)
    width = r.maximum - r.minimum
    print(f"style dims: {r.dims}")
    print(f"samples: {r.num_samples}")
    print(f"median range width: {float(width.median()):.4f}")
    print(f"written: {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------


def _project_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files (PNG/JPEG/DICOM) or folders of them")
    p.add_argument("--generator", required=True)
    p.add_argument(
        "--discriminator", help="checkpoint with D, enables the discriminator term (often the same file)"
    )
    p.add_argument(
        "--classifier", help="classifier spec (demo, xrv:densenet121-res224-all, a .pt or TorchScript)"
    )
    p.add_argument("--target", help="target label of the classifier (default Pneumonia)")
    p.add_argument("--ranges", help="style-ranges file: start from its mean S (default: styles of w_avg)")
    p.add_argument("--out", required=True, help="output folder")
    from ..projection import ProjectionConfig

    default = ProjectionConfig()
    p.add_argument("--steps", type=int, default=default.steps, help=f"Adam steps [{default.steps}]")
    p.add_argument("--lr", type=float, default=default.lr, help=f"learning rate [{default.lr:g}]")
    p.add_argument(
        "--alpha", type=float, default=default.alpha, help=f"perceptual weight [{default.alpha:g}]"
    )
    p.add_argument("--beta", type=float, default=default.beta, help=f"classifier weight [{default.beta:g}]")
    p.add_argument(
        "--gamma", type=float, default=default.gamma, help=f"discriminator weight [{default.gamma:g}]"
    )
    p.add_argument(
        "--batch", type=int, default=default.batch_size, help=f"images per batch [{default.batch_size}]"
    )
    add_device_argument(p)
    add_compile_argument(p)


@command(
    "project", "project images into StyleSpace (500 Adam steps on S, Eq. 2 of papers/003)", _project_args
)
def _project(args: argparse.Namespace) -> int:
    from ..images import list_image_files, read_radiograph, resize_square, save_png, to_tensor
    from ..projection import ProjectionConfig, project_images
    from ..ranges import StyleRanges

    G, D, C = load_models(args, need_classifier=False)
    files: list[Path] = []
    for item in args.images:
        p = Path(item)
        files.extend(list_image_files(p) if p.is_dir() else [p])
    if not files:
        print("error: no image files given", file=sys.stderr)
        return 2
    pixels = [resize_square(read_radiograph(f).pixels, G.img_resolution) for f in files]
    x = to_tensor(pixels, channels=G.img_channels)
    init = StyleRanges.load(args.ranges).mean if args.ranges else None
    cfg = ProjectionConfig(
        steps=args.steps,
        lr=args.lr,
        alpha=args.alpha,
        beta=args.beta,
        gamma=args.gamma,
        batch_size=args.batch,
    )
    bar = TqdmProgress("project", unit="step")
    res = project_images(
        x,
        G,
        classifier=C,
        D=D,
        init_styles=init,
        config=cfg,
        progress_fn=bar,
        compile_models=args.compile,
    )
    bar.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "styles.npy", res.styles.numpy())
    with open(out / "fidelity.csv", "w", newline="") as f:
        w = csv.writer(f)
        cols = ["mse", "psnr", "ssim", "perceptual", "prob_original", "prob_reconstruction", "prob_abs_diff"]
        w.writerow(["index", "file"] + cols)
        for i, path in enumerate(files):
            fig = res.per_image(i)
            w.writerow([i, path.name] + [f"{fig[c]:.6g}" for c in cols])
            save_png(res.reconstructions[i], out / f"{i:04d}_reconstruction.png")
    (out / "projection.json").write_text(
        json.dumps(
            {
                "perceptual": res.perceptual_kind,
                "config": res.config,
                "files": [str(f) for f in files],
                "seconds": res.seconds,
            },
            indent=1,
        )
    )
    print(f"images: {len(files)}")
    print(f"perceptual term: {res.perceptual_kind}")
    print(f"median psnr: {float(res.psnr.median()):.2f} dB")
    print(f"median ssim: {float(res.ssim.median()):.4f}")
    print(f"written: {out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("styles", help="styles .npy [N, D] (from `project`)")
    p.add_argument("--generator", required=True)
    p.add_argument("--classifier", required=True)
    p.add_argument("--target")
    p.add_argument("--ranges", required=True, help="style-ranges file")
    p.add_argument("--out", required=True, help="sweep folder (resumes if it holds the same sweep)")
    p.add_argument("--mode", choices=["exact", "screening", "naive"], default=SweepConfig.mode)
    p.add_argument("--clamp", choices=["minmax", "percentile"], default=SweepConfig.clamp)
    p.add_argument("--percentile", type=float)
    p.add_argument("--batch", type=int, default=SweepConfig.batch_size)
    p.add_argument(
        "--top-k",
        type=int,
        default=SweepConfig.screening_top_k,
        help="screening: dimensions per image evaluated exactly",
    )
    add_device_argument(p)
    add_compile_argument(p)


@command(
    "sweep", "clamp every style dimension to its min and max and record the classifier deltas", _sweep_args
)
def _sweep(args: argparse.Namespace) -> int:
    from ..ranges import StyleRanges
    from ..sweep import SweepConfig, sweep_deltas

    G, _, C = load_models(args, need_classifier=True)
    styles = torch.from_numpy(np.load(args.styles)).float()
    cfg = SweepConfig(
        mode=args.mode,
        clamp=args.clamp,
        percentile=args.percentile,
        batch_size=args.batch,
        screening_top_k=args.top_k,
    )
    bar = TqdmProgress("sweep", unit="dim")
    res = sweep_deltas(
        G,
        C,
        styles,
        StyleRanges.load(args.ranges),
        config=cfg,
        out_dir=args.out,
        progress_fn=bar,
        compile_models=args.compile,
    )
    bar.close()
    print(f"images: {styles.shape[0]}  style dims: {styles.shape[1]}")
    print(f"perturbations/s: {res.perturbations_per_second:.1f}")
    print(f"written: {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------


def _select_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep folder")
    p.add_argument("--generator", required=True, help="for the style layout")
    p.add_argument("--aggregate", choices=AGGREGATES, default=SelectionConfig.aggregate)
    p.add_argument("--delta", type=float, default=SelectionConfig.delta)
    p.add_argument("--min-fraction", type=float, default=SelectionConfig.min_fraction)
    p.add_argument(
        "--top-k", type=int, help="select the K strongest dimensions instead of those above the threshold"
    )
    p.add_argument(
        "--rule", choices=RULES, default=SelectionConfig.rule, help="estimate or interval (lower bound)"
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=SelectionConfig.resamples,
        help="bootstrap resamples (0: no intervals)",
    )
    p.add_argument(
        "--confidence", type=float, default=SelectionConfig.confidence, help="level of the intervals"
    )
    p.add_argument("--seed", type=int, default=SelectionConfig.seed, help="seed of the bootstrap")
    p.add_argument(
        "--tolerance",
        type=float,
        help="numeric error of the deltas [default: from the precision the sweep was computed in]",
    )
    p.add_argument("--csv", help="write the ranking of all dimensions here")
    p.add_argument("--show", type=int, default=20, help="print this many top dimensions")
    add_device_argument(p)


@command("select", "rank style dimensions by their effect and select those above delta", _select_args)
def _select(args: argparse.Namespace) -> int:
    from ..checkpoints import load_generator
    from ..selection import select_dimensions
    from ..sweep import delta_tolerance, open_deltas

    layout = load_generator(args.generator, device=args.device).style_layout
    deltas, _, meta = open_deltas(args.sweep)
    if args.top_k is not None and args.top_k < 1:
        raise SystemExit("error: --top-k must be at least 1")
    tolerance = delta_tolerance(meta["precision"]) if args.tolerance is None else args.tolerance
    try:
        sel = select_dimensions(
            deltas,
            layout,
            aggregate=args.aggregate,
            delta=args.delta,
            min_fraction=args.min_fraction,
            strongest_k=args.top_k,
            rule=args.rule,
            resamples=args.resamples,
            confidence=args.confidence,
            seed=args.seed,
            tolerance=tolerance,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    rule = f"top {args.top_k}" if args.top_k else f"delta {args.delta}, rule {args.rule}"
    print(
        f"selected: {len(sel.selected)} of {layout.dims} (aggregate {args.aggregate}, {rule}); "
        f"borderline: {len(sel.borderline)}; deltas in {meta['precision']}, tolerance {tolerance:g}"
    )
    print("rank  dim    layer        ch   effect  interval           freq  direction raises")
    for e in sel.ranking[: args.show]:
        mark = "*" if e.selected else ("?" if e.borderline else " ")
        print(
            f"{e.rank:>4}{mark} {e.dim:<6} {e.layer:<12} {e.channel:<4} {e.effect:7.4f} "
            f"[{e.effect_lower:7.4f}, {e.effect_upper:7.4f}] {e.frequency:5.2f} {e.direction:<9} "
            f"{'yes' if e.raises_score else 'no'}"
        )
    for e in sel.borderline[: args.show]:
        print(f"borderline {e.dim}: {e.borderline_reason}")
    if args.csv:
        rows = [e.as_dict() for e in sel.ranking]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"written: {args.csv}")
    return 0
