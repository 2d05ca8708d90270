"""TorchScript files as classifiers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import (
    DEFAULT_TARGET,
    ClassifierError,
    ImageClassifier,
    InputTransform,
    _finish,
    _logit_of_probability,
    _select_output,
)


class TorchScriptClassifier(ImageClassifier):
    """A TorchScript module taking the prepared input and returning logits (``output="logit"``) or
    probabilities (``output="probability"``) as ``[N]``, ``[N, 1]``, or ``[N, K]`` with ``output_index``.

    Forward hooks cannot be attached inside a TorchScript module, so ``features`` works only when the module
    exports a ``features(x) -> Dict[str, Tensor]`` method.
    """

    network: Any  # a ScriptModule, whose exported methods are known only at run time

    def __init__(
        self,
        network: nn.Module,
        *,
        name: str,
        target: str,
        input_transform: InputTransform,
        output: str = "logit",
        output_index: int | None = None,
    ):
        if output not in ("logit", "probability"):
            raise ClassifierError(f"output must be 'logit' or 'probability', got {output!r}")
        super().__init__(network, name=name, target=target, input_transform=input_transform)
        self.output = output
        self.output_index = output_index

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        out = _select_output(self.network(x), self.output_index, self.name)
        return out if self.output == "logit" else _logit_of_probability(out)

    def feature_layer_names(self) -> list[str]:
        return []

    def features(self, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not hasattr(self.network, "features"):
            if not layers:
                return {}
            raise ClassifierError(
                f"{self.name} is a TorchScript module without an exported features() method; its "
                "intermediate layers cannot be read"
            )
        found = dict(self.network.features(self.prepare(images)))
        layers = list(found) if layers is None else list(layers)
        missing = [name for name in layers if name not in found]
        if missing:
            raise ClassifierError(
                f"{self.name}.features() has no layer(s) {missing}; available: {sorted(found)}"
            )
        return {name: found[name] for name in layers}


def load_torchscript_classifier(
    path: str | os.PathLike,
    *,
    target: str = DEFAULT_TARGET,
    output: str = "logit",
    output_index: int | None = None,
    input_transform: InputTransform | None = None,
    device: str | torch.device = "cpu",
) -> TorchScriptClassifier:
    """A TorchScript file as a classifier. The default input is the generator's image as it is: 1 channel,
    [-1, 1], no resizing; pass ``input_transform`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"TorchScript file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice is not actionable
            network = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch.jit.load raises many kinds of errors for broken files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClassifierError(f"{path.name} is not a readable TorchScript file: {msg}") from None
    classifier = TorchScriptClassifier(
        network,
        name=f"torchscript:{path.name}",
        target=target,
        input_transform=input_transform or InputTransform.identity(),
        output=output,
        output_index=output_index,
    )
    return _finish(classifier, device)


# ------------------------------------------------------------------------------------------------------------
# This tool's checkpoints
