"""Command line: ``python -m explain_engine <command> ...``.

Each command is a thin wrapper: it parses arguments, reads files, calls one library function and writes files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {}


def command(name: str, help_text: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``run(args) -> exit code`` as sub-command ``name`` with its argument builder."""

    def register(run):
        COMMANDS[name] = (add_args, run, help_text)
        return run

    return register


class TqdmProgress:
    """A ``progress_fn(done, total, message)`` that draws a tqdm bar on stderr."""

    def __init__(self, desc: str, unit: str = "it"):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None
        self.desc = desc
        self.unit = unit

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if self.bar is None:
            self.bar = self._tqdm(
                total=total, desc=self.desc, unit=self.unit, file=sys.stderr, dynamic_ncols=True
            )
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def stop_requested_on_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, SIGINT and SIGTERM do not kill the process but make the yielded ``stop()`` return true,
    so a long job can save and end cleanly; a second signal raises ``KeyboardInterrupt``. Handlers are restored
    on exit."""
    requested = []

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
        print(
            f"{signal.Signals(signum).name}: saving and stopping (send it again to stop at once)", flush=True
        )

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------------------------
# info


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
    from .checkpoints import load_generator
    from .stylegan2 import Generator, generator_kwargs

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


# ---------------------------------------------------------------------------------------------------------------
# train-gan


def _phantom_cache(path: Path, *, n: int, size: int, seed: int, split: str) -> np.ndarray:
    """Images of a phantom dataset, cached as .npz so that resumed training sees the same data."""
    from .phantoms import PhantomDataset, make_phantom_dataset

    if path.exists():
        return PhantomDataset.load(path).images
    print(f"rendering {n} phantoms at {size}px into {path} ...", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = make_phantom_dataset(n, size=size, seed=seed, split=split)
    ds.save(path)
    return ds.images


def _train_gan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default="var/train/gan", help="training folder (state, network.pt) [var/train/gan]"
    )
    p.add_argument("--preset", default="demo128")
    p.add_argument("--kimg", type=float, default=300.0, help="total thousands of images to show D")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--phantoms", type=int, default=12000, help="training phantoms to render")
    p.add_argument("--data", help="phantom .npz cache (default <out>/phantoms.npz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--max-hours", type=float, default=None, help="stop (after saving) after this long")
    p.add_argument("--export", help="when done, copy the networks (G_ema, G, D) into this network file")
    p.add_argument(
        "--init-from", help="with no training state in --out, start from this network file's weights"
    )


@command(
    "train-gan",
    "train (or resume) the demo StyleGAN2 on phantoms, on the CPU; Ctrl-C or SIGTERM saves, then stops",
    _train_gan_args,
)
def _train_gan(args: argparse.Namespace) -> int:
    from .stylegan2 import PRESETS
    from .training.gan import GanTrainingConfig, train_gan

    out = Path(args.out)
    size = PRESETS[args.preset]["resolution"]
    images = _phantom_cache(
        Path(args.data or out / "phantoms.npz"), n=args.phantoms, size=size, seed=args.seed, split="train"
    )
    cfg = GanTrainingConfig(
        preset=args.preset, total_kimg=args.kimg, batch_size=args.batch, seed=args.seed, threads=args.threads
    )

    def progress(done: int, total: int, message: str) -> None:
        print(message, flush=True)

    with stop_requested_on_signals() as stop:
        net = train_gan(
            images,
            out,
            cfg,
            progress_fn=progress,
            abort_fn=stop,
            max_seconds=args.max_hours * 3600 if args.max_hours else None,
            init_from=args.init_from,
        )
    print(f"network: {net}")
    if args.export:
        export_networks(net, args.export)
        print(f"exported: {args.export}")
    return 0


def export_networks(network_file: str | Path, out: str | Path) -> Path:
    """Copy a training run's networks into a shippable file: G_ema (used), G and D (to continue training)."""
    from .checkpoints import read_checkpoint, save_networks

    nets = read_checkpoint(network_file)
    meta = torch.load(network_file, weights_only=True)["metadata"]
    return save_networks(out, {k: nets[k] for k in ("G_ema", "G", "D")}, metadata=meta)


# ------------------------------------------------------------------------------------------------------------
# train-classifier, evaluate-classifier


def _train_classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        help="classifier checkpoint to write (.pt); metrics go to <out>.metrics.json beside it",
    )
    p.add_argument("--size", type=int, default=128, help="phantom side and classifier input size [128]")
    p.add_argument("--train", type=int, default=4000, help="training phantoms [4000]")
    p.add_argument(
        "--val",
        type=int,
        default=1000,
        help="phantoms in each evaluation split: val (shortcut as in training), neutral and flipped [1000]",
    )
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate [0.003]")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batch order and augmentation")
    p.add_argument(
        "--phantom-seed",
        type=int,
        default=100,
        help="phantom stream seeds: train S, val S+1, neutral S+2, flipped S+3 [100]",
    )
    p.add_argument(
        "--shortcut-strength",
        type=float,
        default=0.95,
        help="P(portable AP | pneumonia) in train and val; reversed in flipped [0.95]",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")


@command(
    "train-classifier",
    "train the demo classifier (with its loss-estimator head) on phantoms",
    _train_classifier_args,
)
def _train_classifier(args: argparse.Namespace) -> int:
    from .classifiers import save_classifier
    from .demo_classifier import DemoClassifierConfig
    from .phantoms import make_phantom_dataset
    from .training.classifier import ClassifierTrainingConfig, train_classifier

    out = Path(args.out)
    splits = {"train": args.train, "val": args.val, "neutral": args.val, "flipped": args.val}
    data = {}
    for offset, (split, n) in enumerate(splits.items()):
        print(f"rendering {n} {split} phantoms at {args.size}px ...", file=sys.stderr, flush=True)
        data[split] = make_phantom_dataset(
            n,
            size=args.size,
            seed=args.phantom_seed + offset,
            split=split,
            shortcut_strength=args.shortcut_strength,
        )
    config = ClassifierTrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        learning_rate=args.lr,
        seed=args.seed,
        threads=args.threads,
        model=DemoClassifierConfig(input_size=args.size),
    )
    progress = TqdmProgress("train-classifier", unit="step")
    try:
        model, metrics = train_classifier(
            data["train"],
            data["val"],
            config=config,
            eval_sets={"neutral": data["neutral"], "flipped": data["flipped"]},
            progress_fn=progress,
        )
    finally:
        progress.close()
    metrics["data"] = {
        "size": args.size,
        "shortcut_strength": args.shortcut_strength,
        "phantom_seed": args.phantom_seed,
        **{f"{k}_phantoms": v for k, v in splits.items()},
    }
    save_classifier(out, model, metrics=metrics)
    dump_json(metrics, out.with_name(out.name + ".metrics.json"))
    for split in ("val", "neutral", "flipped"):
        m = metrics[split]
        print(
            f"{split}: auroc {_fmt(m['auroc'])}  accuracy {_fmt(m['accuracy'])}  ece {_fmt(m['ece'])}  "
            f"brier {_fmt(m['brier'])}  auroc with shortcut {_fmt(m['auroc_shortcut_present'])} / "
            f"without {_fmt(m['auroc_shortcut_absent'])}"
        )
    print(f"wall time: {metrics['wall_seconds']:.0f} s for {metrics['steps']} steps")
    print(f"classifier: {out}")
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _evaluate_classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classifier",
        required=True,
        help="'demo' (the shipped demo classifier), a classifier checkpoint .pt of this tool, a "
        "TorchScript file, a torchvision state dict with --arch, or xrv:<weights> (e.g. "
        "xrv:densenet121-res224-all, read from ~/.torchxrayvision/models_data/, never "
        "downloaded)",
    )
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


def _read_case_folder(folder: Path, split: str | None) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Filenames, images (float32 [H, W] in [-1, 1]) and labels of the rows of ``labels.csv``."""
    import csv

    from .images import read_radiograph

    table = folder / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found (expected columns filename,label,split)")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{table} lacks column(s) {sorted(missing)}; expected filename,label,split")
        rows = [
            (line, row)
            for line, row in enumerate(reader, start=2)
            if split is None or (row.get("split") or "").strip() == split
        ]
    names, images, labels = [], [], []
    for line, row in rows:
        name = (row["filename"] or "").strip()
        label = (row["label"] or "").strip()
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
    from .classifiers import ClassifierError, load_classifier, predict_probabilities
    from .metrics import classification_metrics

    if args.shortcut_reliance is not None and args.shortcut_reliance < 1:
        print("error: --shortcut-reliance needs at least 1 phantom", file=sys.stderr)
        return 2
    try:
        classifier = load_classifier(
            args.classifier, target=args.target, arch=args.arch, output_index=args.output_index
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
        from .phantoms import make_phantom_dataset

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
    print(f"auroc: {_fmt(metrics['auroc'])}")
    print(f"accuracy: {_fmt(metrics['accuracy'])}")
    print(f"ece: {_fmt(metrics['ece'])}")
    print(f"brier: {_fmt(metrics['brier'])}")
    print("reliability (bin of predicted probability: cases, mean predicted, observed positive rate):")
    for b in metrics["reliability"]:
        print(
            f"  [{b['lower']:.1f}, {b['upper']:.1f}{']' if b['upper'] >= 1 else ')'}: {b['count']:>6}  "
            f"{_fmt(b['mean_probability']):>7}  {_fmt(b['observed_frequency']):>7}"
        )
    extra = {}
    if args.shortcut_reliance:
        from .validation import shortcut_reliance

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


# ---------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import cli_counterfactuals, cli_pipeline  # noqa: F401 - register their commands

    parser = argparse.ArgumentParser(
        prog="python -m explain_engine",
        description="Counterfactual explanations of image classifiers in StyleSpace.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoints import CheckpointError

    try:
        return COMMANDS[args.command][1](args)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def dump_json(obj, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=float))
