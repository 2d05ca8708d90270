"""The classifier contract, and what every adapter shares.

The contract (``ImageClassifier``) is small: a module that maps generator images ``[N, C, H, W]`` with
values in ``[-1, 1]`` (-1 = black/air, +1 = white/dense) to the probability of one target label ``[N]``,
differentiable end to end, with its own resizing, channel handling and intensity normalisation inside. The
projection loss (papers/003, Eq. 2), the style sweep (Eq. 3-5) and the counterfactual methods all talk to a
classifier only through it:

* ``classifier(images) -> [N]`` probability of ``classifier.target``; 0.5 is the decision threshold.
* ``classifier.logit(images) -> [N]`` the log-odds of that probability (0 at the threshold).
* ``classifier.features(images, layers) -> {name: activation}`` intermediate activations of named layers, for
  perceptual and domain losses.

Images given to a classifier are moved to the device of its weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import file_kind, is_torch_file_head

DEFAULT_TARGET = "Pneumonia"

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
    network: nn.Module
    _mean: torch.Tensor
    _std: torch.Tensor

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
        images = images.to(self._mean.device)
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


_C = TypeVar("_C", bound="ImageClassifier")


def _freeze(classifier: _C) -> _C:
    """Eval mode and no parameter gradients: explaining a fixed model needs gradients w.r.t. inputs only."""
    classifier.eval()
    classifier.requires_grad_(False)
    return classifier


def _no_inplace_activations(network: nn.Module) -> None:
    # In-place ReLUs overwrite the output of the layer before them, which would corrupt captured features.
    for module in network.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            setattr(module, "inplace", False)  # noqa: B010 - nn.Module's typing hides the attribute


def _read_torch_file(path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors turned into ``ClassifierError``."""
    if not path.is_file():
        raise ClassifierError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise ClassifierError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not is_torch_file_head(head):
        raise ClassifierError(f"{path.name} is {file_kind(head)}, not a {what} (a PyTorch file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises almost any error for a file that is not its own
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
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ClassifierError(
            f"{path.name} does not fit {arch}: its state dict holds entries that are not tensors"
        )
    try:
        result = network.load_state_dict(state_dict, strict=False)
    except Exception as exc:  # noqa: BLE001 - shape mismatches (RuntimeError) and other misfits
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        shown = "; ".join(lines[:3]) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClassifierError(f"{path.name} does not fit {arch}: {shown}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ClassifierError(
            f"{path.name} does not fit {arch}: {len(result.missing_keys)} missing parameters "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]})"
        )


def _finish(classifier: _C, device: str | torch.device = "cpu") -> _C:
    """A loaded classifier frozen (see ``_freeze``) and moved to ``device``."""
    return _freeze(classifier).to(torch.device(device))


def classifier_logit(classifier, images: torch.Tensor) -> torch.Tensor:
    """The label's logit ``[N]``: ``classifier.logit`` when it has one (an ``ImageClassifier``), else the
    log-odds of the probability returned by calling it (any module mapping images to ``[N]`` probabilities)."""
    if hasattr(classifier, "logit"):
        return classifier.logit(images)
    p = classifier(images).clamp(1e-6, 1 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


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
