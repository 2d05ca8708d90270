"""Commands that inspect and evaluate models: ``info``, ``evaluate-classifier``, ``evaluate-gan``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .common import CLASSIFIER_HELP, add_device_argument, command, dump_json, fmt


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="a .pkl (stylegan2-ada-pytorch) or .pt network file")
    p.add_argument(
        "--preset",
        help="instead of a checkpoint, a configuration with random weights (paper256, demo128, demo64)",
    )
    p.add_argument("--channels", type=int, default=1, help="image channels for --preset (default 1)")
    p.add_argument("--layers", action="store_true", help="list every style layer")


@command("info", "print a generator's resolution, channels and StyleSpace layout", _info_args)
def _info(args: argparse.Namespace) -> int:
    from ..checkpoints import load_generator
    from ..stylegan2 import Generator, generator_kwargs

    if args.preset:
        G = Generator(**generator_kwargs(args.preset, img_channels=args.channels))
        source = f"preset {args.preset} (random weights)"
    elif args.checkpoint:
        G = load_generator(args.checkpoint)
        source = args.checkpoint
    else:
        print("error: give a CHECKPOINT or --preset NAME", file=sys.stderr)
        return 2
    layout = G.style_layout
    print(f"generator: {source}")
    print(f"resolution: {G.img_resolution}")
    print(f"channels: {G.img_channels}")
    print(f"z_dim: {G.z_dim}  w_dim: {G.w_dim}  num_ws: {G.num_ws}")
    print(f"parameters: {sum(p.numel() for p in G.parameters())}")
    print(f"style layers: {len(layout)}")
    print(f"style dims: {layout.dims}")
    print(f"conv dims: {layout.conv_dims}")
    print(f"torgb dims: {layout.torgb_dims}")
    if args.layers:
        for layer in layout:
            print(
                f"  {layer.name:<12} {layer.kind:<6} res {layer.resolution:<4} channels {layer.channels:<4} "
                f"offset {layer.offset}"
            )
    return 0


# ------------------------------------------------------------------------------------------------------------


def _evaluate_classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classifier", required=True, help=CLASSIFIER_HELP)
    p.add_argument("--arch", help="torchvision architecture of a state-dict file (e.g. resnet18)")
    p.add_argument("--target", help="label to evaluate (default Pneumonia; a pathology name for xrv:)")
    p.add_argument("--output-index", type=int, help="output column of the target for multi-output networks")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--cases", help="folder of images (PNG 8/16-bit, JPEG, DICOM) with labels.csv (filename,label,split)"
    )
    source.add_argument("--phantoms", type=int, help="instead, render this many phantoms")
    p.add_argument(
        "--split",
        help="with --cases: only the rows of this split; with --phantoms: the phantom "
        "split (train, val, neutral, flipped) [neutral]",
    )
    p.add_argument("--size", type=int, default=128, help="phantom side in pixels [128]")
    p.add_argument("--seed", type=int, default=7, help="phantom stream seed [7]")
    p.add_argument("--shortcut-strength", type=float, default=0.8)
    p.add_argument("--bins", type=int, default=10, help="reliability bins [10]")
    p.add_argument(
        "--shortcut-reliance",
        type=int,
        metavar="N",
        help="also render N neutral phantoms at --size with and without the portable AP look, everything else "
        "equal, and print how far the score moves (the planted shortcut's pull)",
    )
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--json", help="also write the metrics to this JSON file")
    add_device_argument(p)


def _read_case_folder(folder: Path, split: str | None) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Filenames, images (float32 [H, W] in [-1, 1]) and labels of the rows of ``labels.csv``."""
    import csv

    from ..images import read_radiograph

    table = folder / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found (expected columns filename,label,split)")
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"filename", "label"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{table} lacks column(s) {sorted(missing)}; expected filename,label,split")
            rows = [
                (line, row)
                for line, row in enumerate(reader, start=2)
                if split is None or (row.get("split") or "").strip() == split
            ]
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{table} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from None
    except csv.Error as exc:
        raise ValueError(f"{table} cannot be read as CSV: {exc}") from None
    names, images, labels = [], [], []
    for line, row in rows:
        name = (row.get("filename") or "").strip()
        label = (row.get("label") or "").strip()
        if label not in ("0", "1"):
            raise ValueError(f"{table}:{line}: label must be 0 or 1, got {label!r}")
        path = folder / name
        if not name or not path.is_file():
            raise FileNotFoundError(f"{table}:{line}: image {path} not found")
        pixels = read_radiograph(path).pixels  # 8/16-bit PNG, JPEG, DICOM -> [0, 1], bright = dense
        names.append(name)
        images.append(pixels * 2.0 - 1.0)
        labels.append(int(label))
    if not names:
        raise ValueError(f"{table} has no rows" + (f" with split {split!r}" if split else ""))
    return names, images, np.asarray(labels, dtype=np.int64)


@command(
    "evaluate-classifier",
    "AUROC, accuracy and calibration of a classifier on labelled PNGs or phantoms",
    _evaluate_classifier_args,
)
def _evaluate_classifier(args: argparse.Namespace) -> int:
    from ..classifiers import ClassifierError, load_classifier, predict_probabilities
    from ..metrics.classification import classification_metrics

    if args.shortcut_reliance is not None and args.shortcut_reliance < 1:
        print("error: --shortcut-reliance needs at least 1 phantom", file=sys.stderr)
        return 2
    try:
        classifier = load_classifier(
            args.classifier,
            target=args.target,
            arch=args.arch,
            output_index=args.output_index,
            device=args.device,
        )
    except ClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cases:
        try:
            _, images, labels = _read_case_folder(Path(args.cases), args.split)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        source = f"{args.cases}" + (f" (split {args.split})" if args.split else "")
    else:
        from ..demo.phantoms import make_phantom_dataset

        split = args.split or "neutral"
        ds = make_phantom_dataset(
            args.phantoms,
            size=args.size,
            seed=args.seed,
            split=split,
            shortcut_strength=args.shortcut_strength,
        )
        images, labels = list(ds.images_float() * 2.0 - 1.0), ds.labels
        source = f"{args.phantoms} {split} phantoms (seed {args.seed}, {args.size}px)"
    # Cases may differ in size: batch runs of equal shape, keep the original order.
    probs = np.empty(len(images), dtype=np.float64)
    start = 0
    while start < len(images):
        stop = start + 1
        while stop < len(images) and stop - start < args.batch and images[stop].shape == images[start].shape:
            stop += 1
        batch = torch.from_numpy(np.stack(images[start:stop])).unsqueeze(1)
        probs[start:stop] = predict_probabilities(classifier, batch, batch_size=args.batch).double().numpy()
        start = stop
    metrics = classification_metrics(labels, probs, n_bins=args.bins)
    print(f"classifier: {classifier.name} (target {classifier.target})")
    print(f"cases: {metrics['n']} from {source}, prevalence {metrics['prevalence']:.3f}")
    print(f"auroc: {fmt(metrics['auroc'])}")
    print(f"accuracy: {fmt(metrics['accuracy'])}")
    print(f"ece: {fmt(metrics['ece'])}")
    print(f"brier: {fmt(metrics['brier'])}")
    print("reliability (bin of predicted probability: cases, mean predicted, observed positive rate):")
    for b in metrics["reliability"]:
        print(
            f"  [{b['lower']:.1f}, {b['upper']:.1f}{']' if b['upper'] >= 1 else ')'}: {b['count']:>6}  "
            f"{fmt(b['mean_probability']):>7}  {fmt(b['observed_frequency']):>7}"
        )
    extra = {}
    if args.shortcut_reliance:
        from ..demo.validation import shortcut_reliance

        rel = shortcut_reliance(classifier, args.size, n=args.shortcut_reliance)
        print(
            f"shortcut reliance ({rel['phantoms']} neutral phantoms, portable AP look on vs off): "
            f"mean change {rel['mean_change']:+.4f}, mean |change| {rel['mean_abs_change']:.4f}, "
            f"|change| >= 0.3 for {rel['fraction_abs_change_at_least_0.3']:.1%}, "
            f">= 0.1 for {rel['fraction_abs_change_at_least_0.1']:.1%}"
        )
        extra["shortcut_reliance"] = rel
    if args.json:
        dump_json(
            {
                "classifier": classifier.name,
                "target": classifier.target,
                "source": source,
                **metrics,
                **extra,
            },
            args.json,
        )
    return 0


# ------------------------------------------------------------------------------------------------------------


def _evaluate_gan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("generator", help="generator checkpoint")
    p.add_argument("--classifier", default="demo", help="feature network (default: the demo classifier)")
    p.add_argument("--real", type=int, default=2000, help="real phantoms to compare with")
    p.add_argument("--fake", type=int, default=2000)
    p.add_argument("--seed", type=int, default=3000, help="phantom stream of the real images")
    p.add_argument("--json", help="write the figures here")
    p.add_argument(
        "--grid",
        help="also write a PNG of samples (two rows, fixed noise) above real phantoms (one row) here",
    )
    add_device_argument(p)


@command(
    "evaluate-gan",
    "KID, FID, precision and recall of a generator against phantoms (classifier features)",
    _evaluate_gan_args,
)
def _evaluate_gan(args: argparse.Namespace) -> int:
    from ..checkpoints import load_generator
    from ..classifiers import load_classifier
    from ..demo.phantoms import make_phantom_dataset
    from ..images import to_tensor
    from ..metrics.gan import evaluate_generator, sample_grid

    G = load_generator(args.generator, device=args.device)
    clf = load_classifier(args.classifier, device=args.device)
    ds = make_phantom_dataset(args.real, size=G.img_resolution, seed=args.seed, split="train")
    real = to_tensor(list(ds.images_float()))
    q = evaluate_generator(G, clf, real, num_fake=args.fake)
    for key, value in q.as_dict().items():
        print(f"{key}: {value:.5g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(q.as_dict(), indent=1))
    if args.grid:
        from PIL import Image

        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample_grid(G, real)).save(args.grid, optimize=True)
        print(f"grid: {args.grid}")
    return 0
