"""Commands of the demo study: ``make-demo-cases``, ``validate-demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..demo.cases import HELDOUT_SEED
from ..selection import AGGREGATES, SelectionConfig
from ..sweep import SweepConfig
from .common import TqdmProgress, add_device_argument, command


def _demo_cases_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="folder to write (heldout/, review/, labels.csv, cases.json)")
    p.add_argument("--heldout", type=int, default=200)
    p.add_argument("--review", type=int, default=20)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (the demo GAN's resolution)")


@command(
    "make-demo-cases",
    "write the demo study's held-out and review phantoms with a labels CSV",
    _demo_cases_args,
)
def _make_demo_cases(args: argparse.Namespace) -> int:
    from ..demo.cases import make_demo_cases

    bar = TqdmProgress("cases", unit="case")
    cases = make_demo_cases(
        args.out, heldout=args.heldout, review=args.review, size=args.size, progress_fn=bar
    )
    bar.close()
    positives = sum(c.label for c in cases)
    print(f"cases: {len(cases)} ({positives} positive)")
    print(f"written: {Path(args.out) / 'labels.csv'}")
    return 0


# ------------------------------------------------------------------------------------------------------------


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", default="explain_engine/assets/demo/generator.pt")
    p.add_argument("--classifier", default="demo")
    p.add_argument("--out", default="var/validation", help="work folder (cached ranges, styles, sweep)")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--steps", type=int, default=500, help="projection steps")
    p.add_argument("--mode", choices=["exact", "screening"], default=SweepConfig.mode)
    p.add_argument("--aggregate", choices=AGGREGATES, default=SelectionConfig.aggregate)
    p.add_argument("--delta", type=float, default=SelectionConfig.delta)
    p.add_argument(
        "--top-k", type=int, help="select the K strongest dimensions instead of those above the threshold"
    )
    p.add_argument("--top", type=int, default=10, help="report at least this many dimensions")
    p.add_argument("--ranges-samples", type=int, default=100_000)
    p.add_argument(
        "--stream",
        type=int,
        default=HELDOUT_SEED,
        help=f"phantom stream (seed) of the held-out phantoms [{HELDOUT_SEED}]; another one gives fresh phantoms",
    )
    p.add_argument("--markdown", help="write the result table here")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    add_device_argument(p)


@command(
    "validate-demo",
    "check which selected style dimensions act on the planted pathology or shortcut",
    _validate_args,
)
def _validate_demo(args: argparse.Namespace) -> int:
    from ..checkpoints import load_discriminator, load_generator
    from ..classifiers import load_classifier
    from ..demo.validation import markdown_table, validate_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.top_k is not None and args.top_k < 1:
        raise SystemExit("error: --top-k must be at least 1")
    G = load_generator(args.generator, device=args.device)
    D = load_discriminator(args.generator, device=args.device)
    clf = load_classifier(args.classifier, device=args.device)
    report = validate_demo(
        G,
        D,
        clf,
        args.out,
        num_images=args.images,
        projection_steps=args.steps,
        sweep_mode=args.mode,
        aggregate=args.aggregate,
        delta=args.delta,
        strongest_k=args.top_k,
        top=args.top,
        ranges_samples=args.ranges_samples,
        stream=args.stream,
        progress_fn=lambda d, t, m: print(f"[{d}/{t}] {m}", flush=True),
    )
    table = markdown_table(report)
    print(f"images: {report.num_images}  selected: {report.selected} of {report.dims}")
    print(f"fidelity: {json.dumps(report.fidelity)}")
    print(f"probes: {json.dumps(report.probes)}")
    print(f"shortcut reliance: {json.dumps(report.shortcut_reliance)}")
    print(table)
    found = report.found
    print(f"pathology dimensions selected: {found['pathology']}")
    print(f"shortcut dimensions selected: {found['shortcut']}")
    print(f"expectation_met: {'true' if report.expectation_met else 'false'}")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0
