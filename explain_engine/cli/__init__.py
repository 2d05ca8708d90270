"""Command line: ``python -m explain_engine <command> ...``.

Each command is a thin wrapper: it parses arguments, reads files, calls one library function and writes files.
One module per command group; ``common`` holds what they share (the registry, progress bars, ``--device``).

* ``pipeline``: ``ranges``, ``project``, ``sweep``, ``select`` (papers/003);
* ``counterfactual``: ``counterfactual`` (one image, one method);
* ``models``: ``info``, ``evaluate-classifier``, ``evaluate-gan``;
* ``training``: ``train-gan``, ``train-classifier`` (the demo models);
* ``demo``: ``make-demo-cases``, ``validate-demo``.
"""

from __future__ import annotations

import argparse
import sys

from . import counterfactual, demo, models, pipeline, training  # noqa: F401 - each registers its commands
from .common import COMMANDS


def build_parser() -> argparse.ArgumentParser:
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
    from ..checkpoints import CheckpointError
    from ..classifiers import ClassifierError
    from ..images import ImageReadError

    try:
        return COMMANDS[args.command][1](args)
    except (CheckpointError, ClassifierError, ImageReadError, FileNotFoundError) as exc:
        # A file that cannot be used: its name and the reason, without a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2
