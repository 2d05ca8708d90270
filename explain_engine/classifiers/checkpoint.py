"""This tool's classifier checkpoints: ``save_classifier`` writes them, ``load_checkpoint_classifier`` reads
them back.

A checkpoint names the architecture that built it (``config["arch"]``). The architectures are registered by
name in ``ARCHITECTURES`` as ``"module:Class"`` of a class with ``from_config(config)`` and a ``network``
whose state dict the file holds; they are imported only when a checkpoint names them, so this module does
not depend on the code that defines them (the demo CNN lives in ``explain_engine.demo``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, cast

import torch

from ..checkpoints import AllocationBudget, AllocationBudgetExceeded, construction_budget
from ..files import atomic_torch_save
from .base import ClassifierError, ImageClassifier, _finish, _load_weights, _read_torch_file

CHECKPOINT_FORMAT = "explain-engine-classifier"
CHECKPOINT_VERSION = 1

# Architecture name (config["arch"]) -> "module:Class" that rebuilds it from its config.
ARCHITECTURES: dict[str, str] = {
    "demo-cnn": "explain_engine.demo.classifier:DemoClassifier",
    "demo-plain-cnn": "explain_engine.demo.classifier:PlainCNNClassifier",
}


def architecture_class(arch: str, path: Path) -> Any:
    """The class registered for ``arch`` (imported on first use)."""
    if arch not in ARCHITECTURES:
        known = ", ".join(repr(name) for name in ARCHITECTURES)
        raise ClassifierError(f"{path.name} names architecture {arch!r}; this tool knows {known}")
    module_name, _, class_name = ARCHITECTURES[arch].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def save_classifier(
    path: str | os.PathLike, classifier: ImageClassifier, *, metrics: dict | None = None
) -> Path:
    """Write ``classifier`` in this tool's format, atomically.

    The file is ``{"format": CHECKPOINT_FORMAT, "version": 1, "config", "state_dict", "metrics"}`` and reads
    back with ``torch.load(weights_only=True)``. Only classifiers that can describe their construction
    (``checkpoint_config()``) can be saved.
    """
    if not hasattr(classifier, "checkpoint_config"):
        raise ClassifierError(
            f"{type(classifier).__name__} cannot be saved in the {CHECKPOINT_FORMAT} format"
        )
    path = Path(path)
    state_dict = {k: v.detach().cpu().clone() for k, v in classifier.network.state_dict().items()}
    record = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": cast(Any, classifier).checkpoint_config(),  # present: checked above
        "state_dict": state_dict,
        "metrics": metrics or {},
    }
    atomic_torch_save(record, path)
    return path


def read_classifier_checkpoint(path: str | os.PathLike) -> dict:
    """The validated contents of a classifier checkpoint written by ``save_classifier``."""
    path = Path(path)
    data = _read_torch_file(path, "classifier checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ClassifierError(
            f"{path.name} is a PyTorch file but not a classifier checkpoint of this tool (expected a dict "
            f"with format={CHECKPOINT_FORMAT!r})"
        )
    if data.get("version") != CHECKPOINT_VERSION:
        raise ClassifierError(
            f"{path.name} has classifier checkpoint version {data.get('version')!r}; this tool reads "
            f"version {CHECKPOINT_VERSION}"
        )
    if not isinstance(data.get("config"), dict) or not isinstance(data.get("state_dict"), dict):
        raise ClassifierError(f"{path.name} lacks its 'config' or 'state_dict'")
    return data


def load_checkpoint_classifier(
    path: str | os.PathLike, target: str | None = None, *, device: str | torch.device = "cpu"
) -> ImageClassifier:
    """The classifier saved in ``path`` by ``save_classifier``, frozen, on ``device``.

    Raises ``ClassifierError`` when the file is not such a checkpoint, names an unknown architecture, holds an
    invalid config or weights that do not fit it, or predicts another label than ``target``.
    """
    path = Path(path)
    data = read_classifier_checkpoint(path)
    config = data["config"]
    arch = config.get("arch")
    if not isinstance(arch, str):
        raise ClassifierError(f"{path.name} names no architecture (config['arch'] is {type(arch).__name__})")
    cls = architecture_class(arch, path)
    try:
        with AllocationBudget(construction_budget(data["state_dict"])):
            classifier = cls.from_config(config)
    except AllocationBudgetExceeded as exc:
        raise ClassifierError(
            f"{path.name}: its {arch} config describes a network larger than the weights it holds ({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a config of any type and value comes from the file
        raise ClassifierError(f"{path.name} has an invalid {arch} classifier config: {exc}") from None
    if target is not None and target != classifier.target:
        raise ClassifierError(f"{path.name} predicts {classifier.target!r}, not {target!r}")
    _load_weights(classifier.network, data["state_dict"], path, f"architecture {arch}")
    classifier.metrics = data.get("metrics") or {}
    return _finish(classifier, device)
