"""TorchXRayVision DenseNets (``xrv:densenet121-res224-all``), read from their weights file on disk.

The weights live under ``~/.torchxrayvision/models_data/``; nothing is ever downloaded. The pathology's output is
passed through the package's operating-point calibration (``op_threshs``) so that 0.5 is the decision threshold,
as in papers/003.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    DEFAULT_TARGET,
    ClassifierError,
    ImageClassifier,
    InputTransform,
    _finish,
    _load_weights,
    _no_inplace_activations,
    _read_torch_file,
    _state_dict_from,
)

XRV_DEFAULT_WEIGHTS = "densenet121-res224-all"


def _xrv():
    try:
        import torchxrayvision
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ClassifierError(
            f"the TorchXRayVision adapter needs the torchxrayvision package: {exc}"
        ) from None
    return torchxrayvision


def _xrv_weights_record(weights: str) -> dict:
    table = _xrv().models.model_urls
    if weights not in table or not weights.startswith("densenet"):
        valid = sorted(k for k in table if k.startswith("densenet"))
        raise ClassifierError(f"unknown TorchXRayVision DenseNet weights {weights!r}; valid: {valid}")
    return table[weights]


def xrv_weights_path(weights: str = XRV_DEFAULT_WEIGHTS, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where TorchXRayVision keeps the weights file of ``weights``.

    That is ``~/.torchxrayvision/models_data/<file name of the release URL>`` (the package's own cache
    directory and naming), or the same file name under ``cache_dir``.
    """
    xrv = _xrv()
    filename = os.path.basename(_xrv_weights_record(weights)["weights_url"])
    if cache_dir is not None:
        return Path(os.path.expanduser(str(cache_dir))) / filename
    return Path(xrv.utils.get_cache_dir()) / filename


def _xrv_safe_globals() -> list:
    """Classes a whole pickled TorchXRayVision DenseNet may name. ``torch.load(weights_only=True)`` rebuilds
    instances of these from their saved attributes without running any code from the file."""
    xrv = _xrv()
    modules = [nn, xrv.models]
    try:
        import torchvision.models.densenet as tv_densenet

        modules.append(tv_densenet)
    except ImportError:  # pragma: no cover
        pass
    allowed: list = [OrderedDict, set]
    for module in modules:
        allowed += [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, nn.Module)]
    return allowed


class XRVDenseNetClassifier(ImageClassifier):
    """A TorchXRayVision DenseNet restricted to one pathology, with the package's calibration.

    The network takes 1-channel 224 x 224 images scaled to [-1024, 1024] (the package's convention: black =
    -1024). Its raw output for the pathology goes through a sigmoid and then TorchXRayVision's ``op_norm``,
    a piecewise-linear map that sends the operating point ``op_thresh`` to 0.5; ``logit`` is the log-odds of
    that calibrated probability, computed without overflow in both pieces.
    """

    network: Any  # a torchxrayvision DenseNet; the package ships no type information

    default_feature_layers = (
        "features.denseblock1",
        "features.denseblock2",
        "features.denseblock3",
        "features.denseblock4",
    )

    def __init__(
        self,
        network: nn.Module,
        *,
        weights: str,
        target: str,
        target_index: int,
        op_thresh: float,
        input_size: int = 224,
    ):
        transform = InputTransform(size=(input_size, input_size), channels=1, mean=(0.5,), std=(1 / 2048,))
        super().__init__(network, name=f"xrv:{weights}", target=target, input_transform=transform)
        self.weights = weights
        self.target_index = target_index
        self.op_thresh = float(op_thresh)

    def raw_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The uncalibrated pathology logit ``[N]`` for a prepared input."""
        features = self.network.features(x)
        pooled = F.adaptive_avg_pool2d(F.relu(features), 1).flatten(1)
        return self.network.classifier(pooled)[:, self.target_index]

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        z = self.raw_logit(x)
        t = self.op_thresh
        # op_norm: s = sigmoid(z); p = s / 2t below t, p = 1 - (1 - s) / 2(1 - t) above.
        #   below t:  logit(p) = log s - log 2t - log(1 - s / 2t)
        #   above t:  logit(p) = log(1 - (1 - s) / 2(1 - t)) - log(1 - s) + log 2(1 - t)
        # Each ratio is clamped so that the branch torch.where discards stays finite, and so do its gradients.
        s = torch.sigmoid(z)
        below_ratio = (s / (2 * t)).clamp(max=0.5)
        above_ratio = (torch.sigmoid(-z) / (2 * (1 - t))).clamp(max=0.5)
        below = F.logsigmoid(z) - math.log(2 * t) - torch.log1p(-below_ratio)
        above = torch.log1p(-above_ratio) - F.logsigmoid(-z) + math.log(2 * (1 - t))
        return torch.where(s < t, below, above)


def load_xrv_densenet(
    weights: str = XRV_DEFAULT_WEIGHTS,
    *,
    target: str = DEFAULT_TARGET,
    cache_dir: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> XRVDenseNetClassifier:
    """A TorchXRayVision DenseNet read from its weights file on disk; nothing is ever downloaded.

    Args:
        weights: TorchXRayVision weights name, e.g. "densenet121-res224-all".
        target: pathology name from the weights' label list (default "Pneumonia").
        cache_dir: folder to look in instead of ``~/.torchxrayvision/models_data/``.
        weights_path: the file itself (overrides the expected location).
        device: where the returned classifier lives (default the CPU).

    The file may hold a state dict or a whole pickled DenseNet (how the package's release files are made);
    the latter is read with ``torch.load(weights_only=True)``, allowing only torch.nn and TorchXRayVision
    module classes. The operating-point threshold comes from the package's table for ``weights``, as the
    package itself does.

    Raises:
        ClassifierError: unknown weights name, unknown or uncalibrated pathology (the message lists the valid
            ones), missing file (the message gives the expected path and the URL to fetch it from), unreadable
            file, or a file that does not fit the architecture.
    """
    record = _xrv_weights_record(weights)
    labels = list(record["labels"])
    if target not in labels:
        raise ClassifierError(f"{weights} does not predict {target!r}; its pathologies: {labels}")
    index = labels.index(target)
    thresholds = record.get("op_threshs")
    op_thresh = float(thresholds[index]) if thresholds is not None else math.nan
    if math.isnan(op_thresh):  # the training data of these weights had no such label
        calibrated = [name for name, t in zip(labels, thresholds or [], strict=False) if not math.isnan(t)]
        raise ClassifierError(
            f"{weights} has no calibrated output for {target!r} (not among its training labels); "
            f"calibrated pathologies: {calibrated}"
        )
    path = Path(weights_path) if weights_path is not None else xrv_weights_path(weights, cache_dir)
    if not path.is_file():
        raise ClassifierError(
            f"TorchXRayVision weights {weights!r} not found: expected the file {path}. This tool never "
            f"downloads weights; fetch {record['weights_url']} on a machine with internet access and put it "
            "there."
        )
    with torch.serialization.safe_globals(_xrv_safe_globals()):
        obj = _read_torch_file(path, "TorchXRayVision weights file")
    state_dict = _state_dict_from(obj, path)
    state_dict.pop("op_threshs", None)  # calibration comes from the package's table (see above)
    network = _xrv().models.DenseNet(weights=None, num_classes=len(labels), apply_sigmoid=False)
    _load_weights(network, state_dict, path, f"the TorchXRayVision DenseNet of {weights}")
    _no_inplace_activations(network)
    classifier = XRVDenseNetClassifier(
        network,
        weights=weights,
        target=target,
        target_index=index,
        op_thresh=op_thresh,
        input_size=int(record.get("input_resolution", 224)),
    )
    return _finish(classifier, device)


# ------------------------------------------------------------------------------------------------------------
# torchvision architectures
