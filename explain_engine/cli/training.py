"""Commands that train the demo models: ``train-gan``, ``train-classifier``, ``train-autoencoder``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .common import TqdmProgress, add_device_argument, command, dump_json, fmt, stop_requested_on_signals


def _phantom_cache(path: Path, *, n: int, size: int, seed: int, split: str) -> np.ndarray:
    """Images of a phantom dataset, cached as .npz so that resumed training sees the same data."""
    from ..demo.phantoms import PhantomDataset, make_phantom_dataset

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
    add_device_argument(p)


@command(
    "train-gan",
    "train (or resume) the demo StyleGAN2 on phantoms; Ctrl-C or SIGTERM saves, then stops",
    _train_gan_args,
)
def _train_gan(args: argparse.Namespace) -> int:
    from ..demo.training.gan import GanTrainingConfig, train_gan
    from ..stylegan2 import PRESETS

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
            device=args.device,
        )
    print(f"network: {net}")
    if args.export:
        export_networks(net, args.export)
        print(f"exported: {args.export}")
    return 0


def export_networks(network_file: str | Path, out: str | Path) -> Path:
    """Copy a training run's networks into a shippable file: G_ema (used), G and D (to continue training)."""
    from ..checkpoints import read_checkpoint, save_networks

    nets = read_checkpoint(network_file)
    meta = torch.load(network_file, weights_only=True)["metadata"]
    return save_networks(out, {k: nets[k] for k in ("G_ema", "G", "D")}, metadata=meta)


def _train_classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        help="classifier checkpoint to write (.pt); metrics go to <out>.metrics.json beside it",
    )
    p.add_argument(
        "--arch",
        choices=("demo-cnn", "demo-plain-cnn"),
        default="demo-cnn",
        help="demo-cnn: the residual CNN with a loss-estimator head (the demo classifier); demo-plain-cnn: a "
        "VGG-like CNN with BatchNorm and no loss head (the oracle that judges counterfactuals) [demo-cnn]",
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
    add_device_argument(p)


@command(
    "train-classifier",
    "train the demo classifier (with its loss-estimator head) on phantoms",
    _train_classifier_args,
)
def _train_classifier(args: argparse.Namespace) -> int:
    from ..classifiers import save_classifier
    from ..demo.classifier import PLAIN_ARCH, DemoClassifierConfig, PlainCNNConfig
    from ..demo.phantoms import make_phantom_dataset
    from ..demo.training.classifier import ClassifierTrainingConfig, train_classifier

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
        model=PlainCNNConfig(input_size=args.size)
        if args.arch == PLAIN_ARCH
        else DemoClassifierConfig(input_size=args.size),
    )
    progress = TqdmProgress("train-classifier", unit="step")
    try:
        model, metrics = train_classifier(
            data["train"],
            data["val"],
            config=config,
            eval_sets={"neutral": data["neutral"], "flipped": data["flipped"]},
            progress_fn=progress,
            device=args.device,
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
            f"{split}: auroc {fmt(m['auroc'])}  accuracy {fmt(m['accuracy'])}  ece {fmt(m['ece'])}  "
            f"brier {fmt(m['brier'])}  auroc with shortcut {fmt(m['auroc_shortcut_present'])} / "
            f"without {fmt(m['auroc_shortcut_absent'])}"
        )
    print(f"wall time: {metrics['wall_seconds']:.0f} s for {metrics['steps']} steps")
    print(f"classifier: {out}")
    return 0


def _train_autoencoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        default="explain_engine/assets/demo/autoencoder.pt",
        help="autoencoder checkpoint to write (.pt); metrics go to <out>.metrics.json beside it "
        "[explain_engine/assets/demo/autoencoder.pt]",
    )
    p.add_argument("--size", type=int, default=64, help="phantom side (the demo generator's) [64]")
    p.add_argument(
        "--train", type=int, default=4000, help="training phantoms, the first of the GAN's stream [4000]"
    )
    p.add_argument(
        "--val", type=int, default=1000, help="held-out phantoms for the reconstruction figures [1000]"
    )
    p.add_argument("--phantom-seed", type=int, default=0, help="training stream seed (the GAN's) [0]")
    p.add_argument("--val-seed", type=int, default=300, help="held-out stream seed [300]")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate [0.002]")
    p.add_argument("--latent-channels", type=int, default=8, help="channels of the spatial latent [8]")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    add_device_argument(p)


@command(
    "train-autoencoder",
    "train the demo autoencoder (the latent space of Latent Shift) on phantoms",
    _train_autoencoder_args,
)
def _train_autoencoder(args: argparse.Namespace) -> int:
    from ..demo.phantoms import make_phantom_dataset
    from ..demo.training.autoencoder import AutoencoderTrainingConfig, train_autoencoder

    out = Path(args.out)
    print(f"rendering {args.train} + {args.val} phantoms at {args.size}px ...", file=sys.stderr, flush=True)
    train = make_phantom_dataset(args.train, size=args.size, seed=args.phantom_seed, split="train")
    val = make_phantom_dataset(args.val, size=args.size, seed=args.val_seed, split="train")
    config = AutoencoderTrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        learning_rate=args.lr,
        latent_channels=args.latent_channels,
        seed=args.seed,
        threads=args.threads,
    )
    data = {
        "size": args.size,
        "phantom_seed": args.phantom_seed,
        "val_seed": args.val_seed,
        "val_phantoms": args.val,
    }
    progress = TqdmProgress("train-autoencoder", unit="step")
    try:
        with stop_requested_on_signals() as stop:
            _, metrics = train_autoencoder(
                train,
                val,
                config=config,
                out=out,
                progress_fn=progress,
                abort_fn=stop,
                device=args.device,
                metadata={"data": data},
            )
    finally:
        progress.close()
    metrics["data"] = data
    dump_json(metrics, out.with_name(out.name + ".metrics.json"))
    v = metrics["val"]
    print(
        f"val ({v['images']} phantoms): PSNR median {v['psnr_median']:.2f} dB, SSIM median {v['ssim_median']:.3f}"
    )
    print(f"wall time: {metrics['wall_seconds']:.0f} s for {metrics['steps']} steps")
    print(f"autoencoder: {out}")
    return 1 if metrics["aborted"] else 0
