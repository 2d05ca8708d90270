"""Naming a classifier, and loading any supported one from its name: the one entry point.

A classifier is named by a *spec* (a study's ``classifier_source``, the CLI's ``--classifier``):

* ``"demo"``: the shipped demo classifier (``explain_engine/assets/demo/classifier.pt``);
* ``"xrv:<weights>"``, e.g. ``"xrv:densenet121-res224-all"``: a TorchXRayVision DenseNet found by its weights
  name;
* anything else: a path to a classifier file (this tool's checkpoint, a TorchScript file or a torchvision
  state dict).

``parse_classifier_spec`` is the only place that reads a spec; ``load_classifier`` builds the classifier.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import DEFAULT_TARGET, ClassifierError, ImageClassifier, InputTransform, _read_torch_file
from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint_classifier
from .torchscript import load_torchscript_classifier
from .torchvision_models import load_torchvision_classifier
from .xrv import XRV_DEFAULT_WEIGHTS, load_xrv_densenet

DEMO_CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "assets" / "demo" / "classifier.pt"
DEMO_SPEC = "demo"
XRV_PREFIX = "xrv:"
KINDS = ("checkpoint", "xrv", "torchvision", "torchscript")


@dataclass(frozen=True)
class ClassifierSpec:
    """What a classifier spec names.

    Attributes:
        source: the spec as given.
        builtin: a built-in name (``"demo"`` or ``"xrv:<weights>"``) rather than a path.
        weights: the TorchXRayVision weights name of an ``xrv:`` spec, else None.
        path: the file to read (the shipped file for ``"demo"``), None for ``xrv:`` weights found by name.
    """

    source: str
    builtin: bool
    weights: str | None
    path: Path | None

    @property
    def loader_source(self) -> str:
        """What ``load_classifier`` takes: a built-in name as it is, else the (resolved) path."""
        return self.source if self.builtin else str(self.path)


def is_builtin_classifier(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a built-in name (``"demo"``, ``"xrv:<weights>"``) rather than a path."""
    spec = str(source)
    return spec == DEMO_SPEC or spec.startswith(XRV_PREFIX)


def parse_classifier_spec(
    source: str | os.PathLike, *, resolve: Callable[[str], Path] | None = None
) -> ClassifierSpec:
    """Read a classifier spec. ``resolve`` maps a path spec to the file (e.g. relative to a media folder);
    by default the path is taken as it is."""
    spec = str(source)
    if spec.startswith(XRV_PREFIX):
        return ClassifierSpec(spec, builtin=True, weights=spec[len(XRV_PREFIX) :], path=None)
    if spec == DEMO_SPEC:
        return ClassifierSpec(spec, builtin=True, weights=None, path=DEMO_CLASSIFIER_PATH)
    return ClassifierSpec(spec, builtin=False, weights=None, path=resolve(spec) if resolve else Path(spec))


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.startswith("code/") or "/code/" in name for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_classifier(
    source: str | os.PathLike,
    *,
    kind: str | None = None,
    target: str | None = None,
    arch: str | None = None,
    output_index: int | None = None,
    output: str = "logit",
    input_transform: InputTransform | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> ImageClassifier:
    """Load any supported classifier, frozen (eval mode, no parameter gradients), on ``device`` (default the
    CPU).

    ``source`` is one of:

    * ``"demo"``: the shipped demo classifier (``explain_engine/assets/demo/classifier.pt``);
    * ``"xrv:<weights>"``, e.g. ``"xrv:densenet121-res224-all"``: a TorchXRayVision DenseNet from its weights
      file under ``~/.torchxrayvision/models_data/`` (or ``cache_dir``); ``target`` names the pathology;
    * a path to this tool's classifier checkpoint (a ``.pt`` written by ``save_classifier``);
    * a path to a TorchScript file (recognised by its contents);
    * a path to a state dict of the torchvision architecture ``arch`` (giving ``arch`` implies
      ``kind="torchvision"``).

    Args:
        source: see above.
        kind: one of ``KINDS``, to force an adapter instead of recognising it (``kind="xrv"`` with a path
            reads that file as ``densenet121-res224-all`` weights).
        target: the label to explain. Default "Pneumonia"; for checkpoints it must match the saved target.
        arch: torchvision architecture name for state-dict files.
        output_index, output, input_transform: see the TorchScript and torchvision adapters.
        cache_dir: TorchXRayVision weights folder instead of ``~/.torchxrayvision/models_data/``.
        device: where the returned classifier lives.

    Raises:
        ClassifierError: with a message that says what is wrong.
    """
    if kind is not None and kind not in KINDS:
        raise ClassifierError(f"unknown classifier kind {kind!r}; choose from {KINDS}")
    spec = parse_classifier_spec(source)
    if spec.weights is not None or kind == "xrv":
        return load_xrv_densenet(
            spec.weights or XRV_DEFAULT_WEIGHTS,
            target=target or DEFAULT_TARGET,
            cache_dir=cache_dir,
            weights_path=None if spec.weights is not None else spec.source,
            device=device,
        )
    path = spec.path
    assert path is not None
    if not path.is_file():
        raise ClassifierError(f"classifier file not found: {path}")
    if kind == "torchvision" or (kind is None and arch is not None):
        if arch is None:
            raise ClassifierError(
                "a torchvision state dict needs its architecture name (arch, e.g. 'resnet18')"
            )
        return load_torchvision_classifier(
            path,
            arch,
            target=target or DEFAULT_TARGET,
            output_index=output_index,
            input_transform=input_transform,
            device=device,
        )
    if kind == "torchscript" or (kind is None and _is_torchscript(path)):
        return load_torchscript_classifier(
            path,
            target=target or DEFAULT_TARGET,
            output=output,
            output_index=output_index,
            input_transform=input_transform,
            device=device,
        )
    data = _read_torch_file(path, "classifier file")
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return load_checkpoint_classifier(path, target, device=device)
    raise ClassifierError(
        f"{path.name} is neither a classifier checkpoint of this tool nor a TorchScript file; if it is a "
        "torchvision state dict, give its architecture (arch='resnet18', --arch resnet18)"
    )
