"""Command line: ``python -m explain_engine <command> ...``.

Each command is a thin wrapper: it parses arguments, reads files, calls one library function and writes files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


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
            self.bar = self._tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr,
                                  dynamic_ncols=True)
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------------------------
# info


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="a .pkl (stylegan2-ada-pytorch) or .pt network file")
    p.add_argument("--preset", help="instead of a checkpoint, a configuration with random weights "
                                    "(paper256, demo128, demo64)")
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
            print(f"  {layer.name:<12} {layer.kind:<6} res {layer.resolution:<4} channels {layer.channels:<4} "
                  f"offset {layer.offset}")
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
    p.add_argument("--out", default="var/train/gan", help="training folder (state, network.pt) [var/train/gan]")
    p.add_argument("--preset", default="demo128")
    p.add_argument("--kimg", type=float, default=300.0, help="total thousands of images to show D")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--phantoms", type=int, default=12000, help="training phantoms to render")
    p.add_argument("--data", help="phantom .npz cache (default <out>/phantoms.npz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--max-hours", type=float, default=None, help="stop (after saving) after this long")
    p.add_argument("--export", help="when done, copy G_ema and D into this network file")


@command("train-gan", "train (or resume) the demo StyleGAN2 on phantoms, on the CPU", _train_gan_args)
def _train_gan(args: argparse.Namespace) -> int:
    from .stylegan2 import PRESETS
    from .training.gan import GanTrainingConfig, train_gan

    out = Path(args.out)
    size = PRESETS[args.preset]["resolution"]
    images = _phantom_cache(Path(args.data or out / "phantoms.npz"), n=args.phantoms, size=size, seed=args.seed,
                            split="train")
    cfg = GanTrainingConfig(preset=args.preset, total_kimg=args.kimg, batch_size=args.batch, seed=args.seed,
                            threads=args.threads)

    def progress(done: int, total: int, message: str) -> None:
        print(message, flush=True)

    net = train_gan(images, out, cfg, progress_fn=progress,
                    max_seconds=args.max_hours * 3600 if args.max_hours else None)
    print(f"network: {net}")
    if args.export:
        from .checkpoints import read_checkpoint, save_networks

        nets = read_checkpoint(net)
        save_networks(args.export, {"G_ema": nets["G_ema"], "D": nets["D"]},
                      metadata=torch.load(net, weights_only=True)["metadata"])
        print(f"exported: {args.export}")
    return 0


# ---------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explain_engine",
                                     description="Counterfactual explanations of image classifiers in StyleSpace.")
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
