"""torchvision classification architectures (by name) with weights from a state-dict file."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .base import (
    DEFAULT_TARGET,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassifierError,
    ImageClassifier,
    InputTransform,
    _finish,
    _load_weights,
    _no_inplace_activations,
    _read_torch_file,
    _select_output,
    _state_dict_from,
)


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
    device: str | torch.device = "cpu",
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
    return _finish(classifier, device)


# ------------------------------------------------------------------------------------------------------------
# TorchScript
