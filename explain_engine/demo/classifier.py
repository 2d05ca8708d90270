"""The demo pneumonia classifier: a small residual CNN with a loss-estimator head, for 1-channel phantoms.

Architecture (``LossEstimatorCNN``): a 5x5 stride-2 stem, then four residual down-sampling blocks (stride 2
each), global average pooling and a linear layer giving the pneumonia logit. At 128 x 128 input the blocks see
32, 16, 8 and 4 pixel grids; at 64 x 64, half that.

The loss-estimator head follows papers/000 (Section 3.1) and Yoo & Kweon, "Learning Loss for Active
Learning" (CVPR 2019): the output of every block is globally average-pooled, passed through its own linear
layer + ReLU, the four results are concatenated and a last linear layer gives one scalar, the estimated
classification loss of the image. It is trained alongside the classifier (``pairwise_ranking_loss``; see
``explain_engine.training.classifier``) to order the images of a minibatch by their true losses, so its
values are ranks on an arbitrary scale, not losses in nats. Later counterfactual methods use
``loss_estimate(images)`` as a differentiable "is this image in the classifier's comfort zone" regulariser.

A second architecture, ``PlainCNN`` (``PlainCNNClassifier``, checkpoint name ``demo-plain-cnn``), is a
VGG-like stack without residual connections, loss head or GroupNorm: pairs of 3x3 convolutions with BatchNorm
and 2x2 max-pooling. It exists to be *different* from the demo classifier, as the oracle that judges
counterfactuals made for it (``explain_engine.counterfactuals.oracle``); it is evaluated, never explained, so
BatchNorm's train/eval difference does not matter there.

Normalisation: GroupNorm. The classifier is explained in eval mode, with gradients flowing through it to
StyleGAN styles and to pixels. BatchNorm would behave differently in training (batch statistics) and in eval
mode (running averages), so the function that was optimised is not the one that is explained, and generator
images whose statistics drift from the training batches would be normalised with stale averages. GroupNorm
normalises each image on its own, identically in both modes, so one image's prediction never depends on what
else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..classifiers import DEFAULT_TARGET, ImageClassifier, InputTransform

__all__ = [
    "ARCHITECTURE_NAMES",
    "DemoClassifier",
    "DemoClassifierConfig",
    "LossEstimatorCNN",
    "PlainCNN",
    "PlainCNNClassifier",
    "PlainCNNConfig",
    "architecture_name",
    "build_demo_classifier",
    "pairwise_ranking_loss",
]

ARCH = "demo-cnn"
PLAIN_ARCH = "demo-plain-cnn"
# What ``train-classifier --arch`` offers: architecture name -> its config class (below).
ARCHITECTURE_NAMES = (ARCH, PLAIN_ARCH)


@dataclass(frozen=True)
class DemoClassifierConfig:
    """Construction arguments of the demo classifier (saved in its checkpoint).

    Attributes:
        input_size: side of the square input in pixels (images of other sizes are resized to it).
        in_channels: image channels the network takes.
        stem_channels: channels of the stride-2 stem convolution.
        block_channels: output channels of the four residual blocks.
        channels_per_group: GroupNorm group width (groups = channels // channels_per_group).
        loss_head_width: hidden units per block in the loss-estimator head.
        target: the label predicted.
    """

    input_size: int = 128
    in_channels: int = 1
    stem_channels: int = 16
    block_channels: tuple[int, ...] = (32, 48, 64, 96)
    channels_per_group: int = 8
    loss_head_width: int = 32
    target: str = DEFAULT_TARGET

    def __post_init__(self):
        object.__setattr__(self, "block_channels", tuple(int(c) for c in self.block_channels))
        if self.input_size < 16 or self.input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16 (>= 16), got {self.input_size}")
        for c in (self.stem_channels, *self.block_channels):
            if c % self.channels_per_group:
                raise ValueError(
                    f"channel count {c} is not a multiple of channels_per_group {self.channels_per_group}"
                )
        if not self.block_channels:
            raise ValueError("block_channels must name at least one block")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_channels"] = list(self.block_channels)
        return d


def _norm(channels: int, per_group: int) -> nn.GroupNorm:
    return nn.GroupNorm(channels // per_group, channels)


class ResidualDownBlock(nn.Module):
    """conv3x3 (stride 2) - GN - ReLU - conv3x3 - GN, plus a 2x2 average-pool + 1x1 conv shortcut, then ReLU.

    ``[N, C_in, H, W] -> [N, C_out, H/2, W/2]``. The pooled shortcut keeps the down-sampling smooth, which
    keeps input gradients free of the checkerboard pattern a strided 1x1 shortcut leaves.
    """

    def __init__(self, in_channels: int, out_channels: int, per_group: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.norm1 = _norm(out_channels, per_group)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels, per_group)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return F.relu(h + self.shortcut(F.avg_pool2d(x, 2)))


class LossEstimatorCNN(nn.Module):
    """The network: prepared images ``[N, in_channels, S, S]`` -> (logit ``[N]``, loss estimate ``[N]``)."""

    def __init__(self, config: DemoClassifierConfig):
        super().__init__()
        self.config = config
        g = config.channels_per_group
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, config.stem_channels, 5, stride=2, padding=2, bias=False),
            _norm(config.stem_channels, g),
            nn.ReLU(),
        )
        blocks, c_in = [], config.stem_channels
        for c_out in config.block_channels:
            blocks.append(ResidualDownBlock(c_in, c_out, g))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, 1)
        self.loss_head_blocks = nn.ModuleList(
            nn.Linear(c, config.loss_head_width) for c in config.block_channels
        )
        self.loss_head_out = nn.Linear(config.loss_head_width * len(config.block_channels), 1)

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every residual block, ``[N, C_i, H_i, W_i]``."""
        h = self.stem(x)
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return outputs

    def classify(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logit ``[N]`` from the block outputs."""
        return self.head(blocks[-1].mean(dim=(2, 3)))[:, 0]

    def estimate_loss(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        """Loss estimate ``[N]`` from the block outputs (GAP -> FC -> ReLU per block, concat -> FC)."""
        hidden = [F.relu(fc(h.mean(dim=(2, 3)))) for fc, h in zip(self.loss_head_blocks, blocks, strict=True)]
        return self.loss_head_out(torch.cat(hidden, dim=1))[:, 0]

    def forward(
        self, x: torch.Tensor, *, detach_loss_head: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logit ``[N]`` and loss estimate ``[N]``. ``detach_loss_head`` keeps the loss head's gradients out
        of the convolutional blocks (used in training, so that the estimator learns on top of the classifier's
        features without reshaping them)."""
        blocks = self.block_outputs(x)
        head_inputs = [b.detach() for b in blocks] if detach_loss_head else blocks
        return self.classify(blocks), self.estimate_loss(head_inputs)


def _config_from_checkpoint(config_class, config: dict):
    """A classifier's construction config from a checkpoint's ``config`` dict; unknown keys are refused."""
    known = set(config_class.__dataclass_fields__)
    unknown = set(config) - known - {"arch", "input_transform", "training"}
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    return config_class(**{k: v for k, v in config.items() if k in known})


class DemoClassifier(ImageClassifier):
    """The demo classifier under the ``ImageClassifier`` contract, plus ``loss_estimate``.

    Its input is the generator's image as it is (1 channel, [-1, 1]), resized to ``config.input_size``;
    probability = sigmoid(logit).
    """

    network: LossEstimatorCNN

    def __init__(self, config: DemoClassifierConfig | None = None):
        config = config or DemoClassifierConfig()
        super().__init__(
            LossEstimatorCNN(config),
            name=f"{ARCH}-{config.input_size}",
            target=config.target,
            input_transform=InputTransform.identity(config.in_channels, config.input_size),
        )
        self.config = config
        self.default_feature_layers = ("stem",) + tuple(
            f"blocks.{i}" for i in range(len(config.block_channels))
        )
        self.metrics: dict = {}

    @classmethod
    def from_config(cls, config: dict) -> DemoClassifier:
        """Rebuild from a checkpoint's ``config`` dict (random weights; load the state dict next)."""
        return cls(_config_from_checkpoint(DemoClassifierConfig, config))

    def checkpoint_config(self) -> dict:
        """The ``config`` entry of the checkpoint: architecture name, construction kwargs, input transform."""
        return {"arch": ARCH, **self.config.to_dict(), "input_transform": self.input_transform.to_dict()}

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.classify(self.network.block_outputs(x))

    def logit_and_loss_estimate(
        self, images: torch.Tensor, *, detach_loss_head: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logit ``[N]`` and loss estimate ``[N]`` of generator images ``[N, C, H, W]`` in [-1, 1]."""
        return self.network(self.prepare(images), detach_loss_head=detach_loss_head)

    def loss_estimate(self, images: torch.Tensor) -> torch.Tensor:
        """Estimated classification loss ``[N]`` of generator images ``[N, C, H, W]`` in [-1, 1].

        Higher = the classifier is expected to be wrong or unsure (or the image is unlike its training data).
        The scale is arbitrary (trained by ranking); compare values, do not read them as nats. Differentiable
        w.r.t. ``images``.
        """
        return self.logit_and_loss_estimate(images)[1]


@dataclass(frozen=True)
class PlainCNNConfig:
    """Construction arguments of ``PlainCNN`` (saved in its checkpoint).

    Attributes:
        input_size: side of the square input in pixels (images of other sizes are resized to it).
        in_channels: image channels the network takes.
        stage_channels: output channels of the stages; each halves the side (max-pooling).
        dropout: dropout rate before the classification head (training only).
        target: the label predicted.
    """

    input_size: int = 64
    in_channels: int = 1
    stage_channels: tuple[int, ...] = (16, 32, 48, 64)
    dropout: float = 0.2
    target: str = DEFAULT_TARGET

    def __post_init__(self):
        object.__setattr__(self, "stage_channels", tuple(int(c) for c in self.stage_channels))
        if not self.stage_channels or any(c < 1 for c in self.stage_channels):
            raise ValueError(
                f"stage_channels must name at least one positive width, got {self.stage_channels}"
            )
        side = 2 ** len(self.stage_channels)
        if self.input_size < side or self.input_size % side:
            raise ValueError(
                f"input_size must be a multiple of {side} for {len(self.stage_channels)} stages, "
                f"got {self.input_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stage_channels"] = list(self.stage_channels)
        return d


class PlainCNN(nn.Module):
    """Prepared images ``[N, in_channels, S, S]`` -> logit ``[N]``.

    Stages ``stages.0`` ... : (conv 3x3, BatchNorm, ReLU) twice, then 2x2 max-pooling; global average pooling
    of the last stage gives the penultimate features, then dropout and a linear head.
    """

    def __init__(self, config: PlainCNNConfig):
        super().__init__()
        self.config = config
        stages, c_in = [], config.in_channels
        for c_out in config.stage_channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(),
                    nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(),
                    nn.MaxPool2d(2),
                )
            )
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.head(self.dropout(x.mean(dim=(2, 3))))[:, 0]


class PlainCNNClassifier(ImageClassifier):
    """``PlainCNN`` under the ``ImageClassifier`` contract: 1-channel images in [-1, 1], resized to
    ``config.input_size``; probability = sigmoid(logit). No loss estimate."""

    network: PlainCNN

    def __init__(self, config: PlainCNNConfig | None = None):
        config = config or PlainCNNConfig()
        super().__init__(
            PlainCNN(config),
            name=f"{PLAIN_ARCH}-{config.input_size}",
            target=config.target,
            input_transform=InputTransform.identity(config.in_channels, config.input_size),
        )
        self.config = config
        self.default_feature_layers = tuple(f"stages.{i}" for i in range(len(config.stage_channels)))
        self.metrics: dict = {}

    @classmethod
    def from_config(cls, config: dict) -> PlainCNNClassifier:
        """Rebuild from a checkpoint's ``config`` dict (random weights; load the state dict next)."""
        return cls(_config_from_checkpoint(PlainCNNConfig, config))

    def checkpoint_config(self) -> dict:
        """The ``config`` entry of the checkpoint: architecture name, construction kwargs, input transform."""
        return {
            "arch": PLAIN_ARCH,
            **self.config.to_dict(),
            "input_transform": self.input_transform.to_dict(),
        }

    def network_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def build_demo_classifier(
    config: DemoClassifierConfig | PlainCNNConfig,
) -> DemoClassifier | PlainCNNClassifier:
    """A freshly initialised classifier of the architecture ``config`` describes."""
    if isinstance(config, PlainCNNConfig):
        return PlainCNNClassifier(config)
    return DemoClassifier(config)


def architecture_name(config: DemoClassifierConfig | PlainCNNConfig) -> str:
    """The checkpoint architecture name of a config (``demo-cnn`` or ``demo-plain-cnn``)."""
    return PLAIN_ARCH if isinstance(config, PlainCNNConfig) else ARCH


def pairwise_ranking_loss(
    estimated: torch.Tensor, target: torch.Tensor, *, margin: float = 1.0
) -> torch.Tensor:
    """The loss-prediction ranking loss of Yoo & Kweon (2019), as used in papers/000.

    The batch is split in halves and sample ``i`` of the first half is paired with sample ``i`` of the
    second (an odd last sample is left out). For each pair with true losses ``l_i, l_j`` (``target``, detached
    here) and estimates ``e_i, e_j``: ``max(0, -sign(l_i - l_j) * (e_i - e_j) + margin)`` with ``sign = +1``
    when ``l_i > l_j`` and -1 otherwise. Returns the mean over pairs (a scalar); 0 for fewer than two samples.

    Args:
        estimated: ``[N]`` loss estimates.
        target: ``[N]`` per-sample losses of the classifier.
        margin: the margin (1 in both papers).
    """
    if estimated.shape != target.shape or estimated.ndim != 1:
        raise ValueError(
            f"estimated and target must both be [N]; got {tuple(estimated.shape)} and {tuple(target.shape)}"
        )
    half = estimated.shape[0] // 2
    if half == 0:
        return estimated.sum() * 0.0
    target = target.detach()
    e_i, e_j = estimated[:half], estimated[half : 2 * half]
    l_i, l_j = target[:half], target[half : 2 * half]
    sign = torch.where(l_i > l_j, 1.0, -1.0).to(estimated.dtype)
    return torch.clamp(margin - sign * (e_i - e_j), min=0.0).mean()
