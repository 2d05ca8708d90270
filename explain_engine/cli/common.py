"""What the commands share: the command registry, progress bars, signals, and the arguments that several
commands take (``--device``, the classifier spec, the study's networks)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..device import DEVICE_CHOICES, DeviceError, resolve_device

COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {}


def command(name: str, help_text: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``run(args) -> exit code`` as sub-command ``name`` with its argument builder."""

    def register(run):
        COMMANDS[name] = (add_args, run, help_text)
        return run

    return register


# ------------------------------------------------------------------------------------------------------------
# Shared arguments


def _device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda[:N]`` (default auto: the first CUDA GPU when there is one); ``args.device`` is
    the resolved ``torch.device``, and a device this machine lacks is a usage error (exit code 2)."""
    p.add_argument(
        "--device",
        type=_device,
        default="auto",
        metavar="DEVICE",
        help=f"where to compute: {DEVICE_CHOICES} [auto: CUDA when available, else the CPU]",
    )


def add_compile_argument(p: argparse.ArgumentParser) -> None:
    """``--compile``: on CUDA, run the passes under ``torch.compile`` (ignored on the CPU)."""
    p.add_argument(
        "--compile",
        action="store_true",
        help="on CUDA, compile the generator and classifier passes with torch.compile: a minute or two "
        "of compilation first, then faster passes (ignored on the CPU)",
    )


CLASSIFIER_HELP = (
    "classifier spec: 'demo' (the shipped demo classifier), a classifier checkpoint .pt of this tool, a "
    "TorchScript file, a torchvision state dict with --arch, or xrv:<weights> (e.g. "
    "xrv:densenet121-res224-all, read from ~/.torchxrayvision/models_data/, never downloaded)"
)


def load_models(args: argparse.Namespace, *, need_classifier: bool):
    """``(G, D, C)`` from ``args.generator``, ``args.discriminator`` and ``args.classifier`` (D and C None when
    not given), on ``args.device``."""
    from ..checkpoints import load_discriminator, load_generator
    from ..classifiers import load_classifier

    device = args.device
    G = load_generator(args.generator, device=device)
    D = None
    if getattr(args, "discriminator", None):
        D = load_discriminator(args.discriminator, device=device)
    C = None
    if need_classifier or getattr(args, "classifier", None):
        if not args.classifier:
            raise SystemExit("error: --classifier is required")
        C = load_classifier(args.classifier, target=getattr(args, "target", None), device=device)
    return G, D, C


# ------------------------------------------------------------------------------------------------------------
# Output


class TqdmProgress:
    """A ``progress_fn(done, total, message)`` that draws a tqdm bar on stderr."""

    def __init__(self, desc: str, unit: str = "it"):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar: Any = None
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


def dump_json(obj, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=float))


def fmt(value) -> str:
    """A figure with 4 decimals, or "n/a" for None and NaN."""
    return "n/a" if value is None or value != value else f"{value:.4f}"
