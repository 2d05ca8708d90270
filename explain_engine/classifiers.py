"""The classifier contract and adapters for the classifiers a study can explain.

The contract (``ImageClassifier``) is small: a module that maps generator images ``[N, C, H, W]`` with
values in ``[-1, 1]`` (-1 = black/air, +1 = white/dense) to the probability of one target label ``[N]``,
differentiable end to end, with its own resizing, channel handling and intensity normalisation inside. The
projection loss (papers/003, Eq. 2), the style sweep (Eq. 3-5) and the counterfactual methods all talk to a
classifier only through it:

* ``classifier(images) -> [N]`` probability of ``classifier.target``; 0.5 is the decision threshold.
* ``classifier.logit(images) -> [N]`` the log-odds of that probability (0 at the threshold).
* ``classifier.features(images, layers) -> {name: activation}`` intermediate activations of named layers, for
  perceptual and domain losses.

Adapters, all built by ``load_classifier``:

* ``XRVDenseNetClassifier``: a TorchXRayVision DenseNet (``xrv:densenet121-res224-all``) read from its
  weights file under ``~/.torchxrayvision/models_data/``; never downloaded. The pathology's output is passed
  through the package's operating-point calibration (``op_threshs``) so that 0.5 is the decision threshold,
  as in papers/003.
* ``TorchvisionClassifier``: a torchvision architecture (by name) with weights from a state-dict file.
* ``TorchScriptClassifier``: a TorchScript file.
* ``DemoClassifier`` (``explain_engine.demo_classifier``): the small CNN with a loss-estimator head trained
  on the phantoms, saved in this tool's classifier checkpoint format.

Every problem met while loading (missing file, wrong architecture, unknown pathology, unreadable file)
raises a ``ClassifierError`` whose message says what is wrong and what was expected.
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_TARGET",
    "DEMO_CLASSIFIER_PATH",
    "ClassifierError",
    "ImageClassifier",
    "InputTransform",
    "TorchScriptClassifier",
    "TorchvisionClassifier",
    "XRVDenseNetClassifier",
    "load_classifier",
    "load_torchscript_classifier",
    "load_torchvision_classifier",
    "load_xrv_densenet",
    "predict_probabilities",
    "read_classifier_checkpoint",
    "save_classifier",
    "xrv_weights_path",
]

CHECKPOINT_FORMAT = "explain-engine-classifier"
CHECKPOINT_VERSION = 1
DEFAULT_TARGET = "Pneumonia"
DEMO_CLASSIFIER_PATH = Path(__file__).resolve().parent / "assets" / "demo" / "classifier.pt"
XRV_DEFAULT_WEIGHTS = "densenet121-res224-all"

# ImageNet statistics that torchvision's pretrained classifiers expect after scaling to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Generator images may overshoot [-1, 1] a little; values far outside mean the caller passed another scale
# (0..255 or Hounsfield-like units), which would silently give meaningless probabilities.
_RANGE_SLACK = 0.5


class ClassifierError(Exception):
    """A classifier cannot be loaded or used as asked; the message says why."""


# ------------------------------------------------------------------------------------------------------------
# The contract


@dataclass(frozen=True)
class InputTransform:
    """How generator images in [-1, 1] become a network's input.

    The image is resized (bilinear; antialiased when shrinking) to ``size``, its channels are replicated
    (1 -> ``channels``) or averaged (3 -> 1), mapped to [0, 1] and normalised per channel as
    ``(x01 - mean) / std``.

    Attributes:
        size: ``(height, width)`` the network expects, or None to keep the generator's resolution.
        channels: input channels of the network (1 or 3).
        mean, std: per-channel (or single) normalisation applied to the [0, 1] image.
    """

    size: tuple[int, int] | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values, got {len(values)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @classmethod
    def identity(cls, channels: int = 1, size: int | tuple[int, int] | None = None) -> InputTransform:
        """Keep [-1, 1] as it is (mean 0.5, std 0.5 on the [0, 1] image)."""
        return cls(size=_pair(size), channels=channels, mean=(0.5,), std=(0.5,))

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable)."""
        return {
            "size": list(self.size) if self.size else None,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _pair(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size}")
    return size


class _FeaturesCaptured(Exception):
    """Raised by a forward hook once every requested layer is captured, to skip the rest of the network."""


class ImageClassifier(nn.Module):
    """Generator images ``[N, C, H, W]`` in [-1, 1] -> probability ``[N]`` of ``target``.

    Subclasses set ``self.network`` (the wrapped module, whose named sub-modules are the layers ``features``
    can return) and implement ``network_logit(x)`` on an already transformed input. The rest (resizing,
    channels, normalisation, sigmoid, feature hooks) is shared.

    Attributes:
        name: human-readable identity (architecture and weights).
        target: the label whose probability is returned (e.g. "Pneumonia").
        input_transform: how images are prepared for the network.
        default_feature_layers: the layers ``features(images)`` returns when none are named.
    """

    default_feature_layers: tuple[str, ...] = ()

    def __init__(self, network: nn.Module, *, name: str, target: str, input_transform: InputTransform):
        super().__init__()
        self.network = network
        self.name = name
        self.target = target
        self.input_transform = input_transform
        mean = torch.tensor(input_transform.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(input_transform.std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("_mean", mean, persistent=False)
        self.register_buffer("_std", std, persistent=False)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(height, width)`` the network sees, or None when it takes the generator's resolution."""
        return self.input_transform.size

    def extra_repr(self) -> str:
        return f"name={self.name!r}, target={self.target!r}, input={self.input_transform}"

    # -- shared pipeline ---------------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """The network's input ``[N, channels, *size]`` for generator images ``[N, C, H, W]`` in [-1, 1]."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [-1, 1], got dtype {images.dtype}")
        if images.numel():
            lo, hi = (float(v) for v in torch.aminmax(images.detach()))
            if lo < -1 - _RANGE_SLACK or hi > 1 + _RANGE_SLACK:
                raise ValueError(
                    f"images must be in [-1, 1] (-1 = black, +1 = white); got values in "
                    f"[{lo:.3g}, {hi:.3g}]. "
                    "Convert 8-bit images with x / 127.5 - 1."
                )
        t = self.input_transform
        c = images.shape[1]
        if c != t.channels:
            if c == 1:
                images = images.expand(-1, t.channels, -1, -1)
            elif t.channels == 1:
                # A 3-channel radiograph is grey: the mean of its channels is its intensity.
                images = images.mean(dim=1, keepdim=True)
            else:
                raise ValueError(f"{self.name} takes {t.channels}-channel input; cannot adapt {c} channels")
        if t.size is not None and tuple(images.shape[-2:]) != t.size:
            shrinking = images.shape[-2] > t.size[0] or images.shape[-1] > t.size[1]
            images = F.interpolate(
                images, size=t.size, mode="bilinear", align_corners=False, antialias=shrinking
            )
        x01 = (images + 1.0) * 0.5
        return (x01 - self._mean.to(images.dtype)) / self._std.to(images.dtype)

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        """Log-odds ``[N]`` of ``target`` for a prepared input ``x``; implemented by each adapter."""
        raise NotImplementedError

    def logit(self, images: torch.Tensor) -> torch.Tensor:
        """Log-odds ``[N]`` of ``target`` for generator images ``[N, C, H, W]`` in [-1, 1] (0 = threshold)."""
        out = self.network_logit(self.prepare(images))
        if out.shape != (images.shape[0],):
            raise ClassifierError(
                f"{self.name} returned shape {tuple(out.shape)}, expected ({images.shape[0]},)"
            )
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Probability ``[N]`` in (0, 1) that ``target`` is present; 0.5 is the decision threshold."""
        return torch.sigmoid(self.logit(images))

    # -- features ----------------------------------------------------------------------------------------

    def feature_layer_names(self) -> list[str]:
        """Names of the layers ``features`` can return (the wrapped network's named sub-modules)."""
        return [name for name, _ in self.network.named_modules() if name]

    def features(self, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of named layers for generator images ``[N, C, H, W]`` in [-1, 1].

        Args:
            images: generator images.
            layers: names from ``feature_layer_names()``; None = ``default_feature_layers``.

        Returns:
            ``{name: tensor}`` in the order asked, each ``[N, ...]`` (e.g. ``[N, C_l, H_l, W_l]`` for a conv
            block), attached to the autograd graph so that losses on them reach ``images``.
        """
        layers = list(self.default_feature_layers if layers is None else layers)
        if not layers:
            return {}
        modules = dict(self.network.named_modules())
        unknown = [name for name in layers if not name or name not in modules]
        if unknown:
            known = self.feature_layer_names()
            shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
            raise ClassifierError(f"{self.name} has no layer(s) {unknown}; available: {shown}")
        wanted = set(layers)
        captured: dict[str, torch.Tensor] = {}

        def hook_for(name: str):
            def hook(module, args, output):
                captured[name] = output
                if len(captured) == len(wanted):
                    raise _FeaturesCaptured

            return hook

        handles = [modules[name].register_forward_hook(hook_for(name)) for name in wanted]
        try:
            self.network_logit(self.prepare(images))
        except _FeaturesCaptured:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {name: captured[name] for name in layers}


def _logit_of_probability(p: torch.Tensor) -> torch.Tensor:
    eps = torch.finfo(p.dtype).eps
    p = p.clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


def _select_output(out: torch.Tensor, output_index: int | None, name: str) -> torch.Tensor:
    """``[N]`` from a network output ``[N]``, ``[N, 1]`` or ``[N, K]`` (column ``output_index``)."""
    if out.ndim == 1:
        return out
    if out.ndim == 2:
        if output_index is not None:
            if not 0 <= output_index < out.shape[1]:
                raise ClassifierError(
                    f"{name}: output_index {output_index} is out of range for {out.shape[1]} outputs"
                )
            return out[:, output_index]
        if out.shape[1] == 1:
            return out[:, 0]
        raise ClassifierError(f"{name} has {out.shape[1]} outputs; say which is the target (output_index)")
    raise ClassifierError(f"{name} returned shape {tuple(out.shape)}; expected [N] or [N, K]")


def _freeze(classifier: ImageClassifier) -> ImageClassifier:
    """Eval mode and no parameter gradients: explaining a fixed model needs gradients w.r.t. inputs only."""
    classifier.eval()
    classifier.requires_grad_(False)
    return classifier


def _no_inplace_activations(network: nn.Module) -> None:
    # In-place ReLUs overwrite the output of the layer before them, which would corrupt captured features.
    for module in network.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False


_LOAD_ERRORS = (
    RuntimeError,
    pickle.UnpicklingError,
    EOFError,
    zipfile.BadZipFile,
    ValueError,
    AttributeError,
)


def _read_torch_file(path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors turned into ``ClassifierError``."""
    if not path.is_file():
        raise ClassifierError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # torch's refusal names the offending global on a later line; that line is the useful one.
        named = [line for line in lines if "Unsupported global" in line or "Unsupported operand" in line]
        msg = (named or lines or [type(exc).__name__])[0]
        raise ClassifierError(
            f"{path.name} is not a readable {what} (truncated, corrupt, or it asks to run code): {msg}"
        ) from None


def _state_dict_from(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a loaded file: a state dict, a dict holding one, or a whole module."""
    if isinstance(obj, nn.Module):
        return dict(obj.state_dict())
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            # Weights saved from nn.DataParallel carry a "module." prefix.
            if all(k.startswith("module.") for k in obj):
                obj = {k[len("module.") :]: v for k, v in obj.items()}
            return dict(obj)
    raise ClassifierError(
        f"{path.name} holds no state dict (expected a dict of parameter tensors, got {type(obj).__name__})"
    )


def _load_weights(network: nn.Module, state_dict: dict, path: Path, arch: str) -> None:
    try:
        result = network.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise ClassifierError(f"{path.name} does not fit {arch}: " + "; ".join(lines[:3])) from None
    if result.missing_keys or result.unexpected_keys:
        raise ClassifierError(
            f"{path.name} does not fit {arch}: {len(result.missing_keys)} missing parameters "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]})"
        )


# ------------------------------------------------------------------------------------------------------------
# TorchXRayVision DenseNet


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
) -> XRVDenseNetClassifier:
    """A TorchXRayVision DenseNet read from its weights file on disk; nothing is ever downloaded.

    Args:
        weights: TorchXRayVision weights name, e.g. "densenet121-res224-all".
        target: pathology name from the weights' label list (default "Pneumonia").
        cache_dir: folder to look in instead of ``~/.torchxrayvision/models_data/``.
        weights_path: the file itself (overrides the expected location).

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
    return _freeze(classifier)


# ------------------------------------------------------------------------------------------------------------
# torchvision architectures


class TorchvisionClassifier(ImageClassifier):
    """A torchvision classification architecture; ``output_index`` picks the target's logit when there are
    several outputs. Default input: 3 channels, 224 x 224, ImageNet normalisation."""

    def __init__(
        self,
        network: nn.Module,
        *,
        arch: str,
        target: str,
        input_transform: InputTransform,
        output_index: int | None = None,
    ):
        super().__init__(network, name=f"torchvision:{arch}", target=target, input_transform=input_transform)
        self.arch = arch
        self.output_index = output_index
        self.default_feature_layers = _default_layers(network)

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        return _select_output(self.network(x), self.output_index, self.name)


def _default_layers(network: nn.Module) -> tuple[str, ...]:
    names = [name for name, _ in network.named_children()]
    if all(f"layer{i}" in names for i in range(1, 5)):  # the ResNet family
        return tuple(f"layer{i}" for i in range(1, 5))
    features = getattr(network, "features", None)
    if isinstance(features, nn.Sequential):  # DenseNet, VGG, EfficientNet, ConvNeXt, MobileNet, ...
        return tuple(f"features.{name}" for name, _ in features.named_children())
    return tuple(names[:-1])


def load_torchvision_classifier(
    path: str | os.PathLike,
    arch: str,
    *,
    target: str = DEFAULT_TARGET,
    output_index: int | None = None,
    input_transform: InputTransform | None = None,
) -> TorchvisionClassifier:
    """A torchvision architecture ``arch`` (e.g. "resnet18") with weights from the state-dict file ``path``.

    The number of outputs is read from the state dict's last weight matrix; with more than one, name the
    target's column with ``output_index``. Raises ``ClassifierError`` when the architecture is unknown
    (listing the valid names) or the state dict does not fit it.
    """
    import torchvision

    valid = sorted(torchvision.models.list_models(module=torchvision.models))
    if arch not in valid:
        raise ClassifierError(f"unknown torchvision architecture {arch!r}; valid: {', '.join(valid)}")
    path = Path(path)
    state_dict = _state_dict_from(_read_torch_file(path, "state-dict file"), path)
    matrices = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2]
    if not matrices:
        raise ClassifierError(f"{path.name} has no fully connected layer, so it is not a {arch} classifier")
    num_classes = int(matrices[-1].shape[0])
    if num_classes > 1 and output_index is None:
        raise ClassifierError(
            f"{path.name} has {num_classes} outputs; say which is {target!r} (output_index)"
        )
    if output_index is not None and not 0 <= output_index < num_classes:
        raise ClassifierError(f"output_index {output_index} is out of range for {num_classes} outputs")
    try:
        network = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    except (TypeError, ValueError) as exc:
        raise ClassifierError(f"cannot build torchvision {arch} with {num_classes} outputs: {exc}") from None
    _load_weights(network, state_dict, path, f"torchvision {arch}")
    _no_inplace_activations(network)
    transform = input_transform or InputTransform((224, 224), 3, IMAGENET_MEAN, IMAGENET_STD)
    classifier = TorchvisionClassifier(
        network, arch=arch, target=target, input_transform=transform, output_index=output_index
    )
    return _freeze(classifier)


# ------------------------------------------------------------------------------------------------------------
# TorchScript


class TorchScriptClassifier(ImageClassifier):
    """A TorchScript module taking the prepared input and returning logits (``output="logit"``) or
    probabilities (``output="probability"``) as ``[N]``, ``[N, 1]``, or ``[N, K]`` with ``output_index``.

    Forward hooks cannot be attached inside a TorchScript module, so ``features`` works only when the module
    exports a ``features(x) -> Dict[str, Tensor]`` method.
    """

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
    except (RuntimeError, ValueError) as exc:
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
    return _freeze(classifier)


# ------------------------------------------------------------------------------------------------------------
# This tool's checkpoints


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates owner-only files; a model file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        "config": classifier.checkpoint_config(),
        "state_dict": state_dict,
        "metrics": metrics or {},
    }
    _atomic_save(record, path)
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


def _load_checkpoint_classifier(path: Path, target: str | None) -> ImageClassifier:
    data = read_classifier_checkpoint(path)
    config = data["config"]
    arch = config.get("arch")
    if arch != "demo-cnn":
        raise ClassifierError(f"{path.name} names architecture {arch!r}; this tool knows 'demo-cnn'")
    from .demo_classifier import DemoClassifier

    try:
        classifier = DemoClassifier.from_config(config)
    except (TypeError, ValueError) as exc:
        raise ClassifierError(f"{path.name} has an invalid demo classifier config: {exc}") from None
    if target is not None and target != classifier.target:
        raise ClassifierError(f"{path.name} predicts {classifier.target!r}, not {target!r}")
    _load_weights(classifier.network, data["state_dict"], path, f"architecture {arch}")
    classifier.metrics = data.get("metrics") or {}
    return _freeze(classifier)


# ------------------------------------------------------------------------------------------------------------
# One entry point


KINDS = ("checkpoint", "xrv", "torchvision", "torchscript")


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
) -> ImageClassifier:
    """Load any supported classifier, frozen (eval mode, no parameter gradients), on the CPU.

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

    Raises:
        ClassifierError: with a message that says what is wrong.
    """
    spec = str(source)
    if kind is not None and kind not in KINDS:
        raise ClassifierError(f"unknown classifier kind {kind!r}; choose from {KINDS}")
    if spec.startswith("xrv:") or kind == "xrv":
        by_name = spec.startswith("xrv:")
        return load_xrv_densenet(
            spec[len("xrv:") :] if by_name else XRV_DEFAULT_WEIGHTS,
            target=target or DEFAULT_TARGET,
            cache_dir=cache_dir,
            weights_path=None if by_name else spec,
        )
    path = DEMO_CLASSIFIER_PATH if spec == "demo" else Path(spec)
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
        )
    if kind == "torchscript" or (kind is None and _is_torchscript(path)):
        return load_torchscript_classifier(
            path,
            target=target or DEFAULT_TARGET,
            output=output,
            output_index=output_index,
            input_transform=input_transform,
        )
    data = _read_torch_file(path, "classifier file")
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return _load_checkpoint_classifier(path, target)
    raise ClassifierError(
        f"{path.name} is neither a classifier checkpoint of this tool nor a TorchScript file; if it is a "
        "torchvision state dict, give its architecture (arch='resnet18', --arch resnet18)"
    )


@torch.no_grad()
def predict_probabilities(
    classifier: ImageClassifier, images: torch.Tensor, *, batch_size: int = 64
) -> torch.Tensor:
    """Probabilities ``[N]`` (CPU) for generator images ``[N, C, H, W]`` in [-1, 1], computed in batches
    without gradients on the classifier's device."""
    device = next((b.device for b in classifier.buffers()), torch.device("cpu"))
    out = [
        classifier(images[i : i + batch_size].to(device)).cpu() for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)
