"""StyleGAN2-ADA generator and discriminator with direct access to StyleSpace.

The modules, their constructor keyword arguments and their parameter/buffer names follow stylegan2-ada-pytorch
(``mapping.fc0.weight``, ``synthesis.b4.conv1.affine.weight``, ``synthesis.b64.torgb.weight``, ``mapping.w_avg``,
...), so a state dict taken from one of its network pickles loads here unchanged (see ``checkpoints.py``).

StyleSpace (Wu et al., 2021) is the space of the per-layer modulation vectors ``s = A(w)`` produced by the affine
layers of every modulated convolution ("conv" layers) and every toRGB layer ("torgb"). ``Generator.style_layout``
describes how these vectors are laid out in one flat vector of ``D`` dimensions, block by block in order of
resolution and, inside a block, ``conv0``, ``conv1``, ``torgb``. For toRGB layers the style is the affine output
before the layer's fixed weight gain, as in StyleSpace.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from .ops import (
    ACTIVATIONS,
    bias_act,
    conv2d_resample,
    downsample2d,
    modulated_1x1,
    modulated_conv2d,
    modulated_conv_act,
    modulated_conv_finish,
    modulated_conv_linear,
    polyphase_up_weight,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("random", "const", "none")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _check_shape(name: str, t: torch.Tensor, shape: Sequence[int | None]) -> None:
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape, strict=True)):
        raise ValueError(f"{name} must have shape {list(shape)} (None = any), got {list(t.shape)}")


# ---------------------------------------------------------------------------------------------------------------
# Basic layers


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate (weights stored at unit scale and multiplied at run time)."""

    def __init__(
        self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1, bias_init=0
    ):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Convolution with equalised learning rate, optional FIR up/down-sampling, bias, activation and clamp."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        bias=True,
        activation="linear",
        up=1,
        down=1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        channels_last=False,
        trainable=True,
    ):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation][1]
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_t is not None:
                self.register_buffer("bias", bias_t)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=(self.up == 1),
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


# ---------------------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z (and optional label c) -> w, broadcast to ``num_ws`` copies, with the running mean ``w_avg``."""

    def __init__(
        self,
        z_dim,
        c_dim,
        w_dim,
        num_ws,
        num_layers=8,
        embed_features=None,
        layer_features=None,
        activation="lrelu",
        lr_multiplier=0.01,
        w_avg_beta=0.995,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = None
        if self.z_dim > 0:
            _check_shape("z", z, [None, self.z_dim])
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError("this mapping network is conditional: pass the label c")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally up-sampling by 2) + noise + bias + leaky ReLU.

    ``fast`` (default) computes it with ``ops.modulated_conv_act``; ``fast = False`` is the reference path, step by
    step as stylegan2-ada-pytorch writes it. ``up_mode`` chooses how the fast path up-samples (see ``ops``).
    ``set_synthesis_path`` sets both on a whole generator.
    """

    fast: bool = True
    up_mode: str = "auto"

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        kernel_size=3,
        up=1,
        use_noise=True,
        activation="lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        channels_last=False,
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][1]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    @property
    def style_channels(self) -> int:
        return self.weight.shape[1]

    def forward(self, x, w, noise_mode="random", fused_modconv=False, gain=1):
        return self.forward_styles(
            x, self.affine(w), noise_mode=noise_mode, fused_modconv=fused_modconv, gain=gain
        )

    def _noise(self, noise_mode: str, batch: int, device) -> torch.Tensor | None:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if self.use_noise and noise_mode == "random":
            return (
                torch.randn([batch, 1, self.resolution, self.resolution], device=device) * self.noise_strength
            )
        if self.use_noise and noise_mode == "const":
            return self.noise_const * self.noise_strength
        return None

    # -- the layer in two parts, for the sweep's per-layer reuse -----------------------------------------------
    @property
    def splits_linear(self) -> bool:
        """Whether ``linear`` and ``finish`` compute this layer (the fast leaky-ReLU path with a 3x3 kernel and,
        when up-sampling, a 4-tap filter), so that a change of one style channel can update its output."""
        ok_up = self.up == 1 or (self.up == 2 and tuple(self.resample_filter.shape) == (4, 4))
        return self.fast and self.activation == "lrelu" and tuple(self.weight.shape[2:]) == (3, 3) and ok_up

    def linear(self, x, styles):
        """The layer's output before demodulation, noise, bias and activation (``ops.modulated_conv_linear``)."""
        return modulated_conv_linear(
            x,
            self.weight,
            styles,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            up_mode=self.up_mode,
        )

    def finish(self, y, dcoefs, noise_mode="const"):
        """The layer's output from its linear part ``y`` and demodulation coefficients ``dcoefs`` [N, O]."""
        return modulated_conv_finish(
            y,
            dcoefs,
            bias=self.bias,
            noise=self._noise(noise_mode, y.shape[0], y.device),
            act_gain=self.act_gain,
            clamp=self.conv_clamp,
        )

    def dense_weight(self) -> torch.Tensor:
        """A 3x3 weight of an ordinary convolution (padding 1) equal to this layer's: its own weight, or when
        up-sampling the polyphase weight [4 * O, I, 3, 3] whose output is pixel-shuffled."""
        return self.weight if self.up == 1 else polyphase_up_weight(self.weight, self.resample_filter)

    def forward_styles(self, x, styles, noise_mode="random", fused_modconv=False, gain=1):
        noise = self._noise(noise_mode, x.shape[0], x.device)
        in_res = self.resolution // self.up
        _check_shape("x", x, [None, self.weight.shape[1], in_res, in_res])
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if self.fast and not fused_modconv and self.activation == "lrelu":
            return modulated_conv_act(
                x,
                self.weight,
                styles,
                bias=self.bias,
                noise=noise,
                up=self.up,
                padding=self.padding,
                resample_filter=self.resample_filter,
                act_gain=self.act_gain * gain,
                clamp=clamp,
                up_mode=self.up_mode,
            )
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
        )
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation (``fast``: one batched matmul)."""

    fast: bool = True

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    @property
    def style_channels(self) -> int:
        return self.weight.shape[1]

    def forward(self, x, w, fused_modconv=False):
        return self.forward_styles(x, self.affine(w), fused_modconv=fused_modconv)

    def forward_styles(self, x, styles, fused_modconv=False, **_):
        if self.fast and not fused_modconv:
            return modulated_1x1(
                x, self.weight, styles * self.weight_gain, bias=self.bias, clamp=self.conv_clamp
            )
        x = modulated_conv2d(
            x, self.weight, styles * self.weight_gain, demodulate=False, fused_modconv=fused_modconv
        )
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [conv0 (up x2)], conv1, and the toRGB skip output.

    ``channels_last``: the memory format of the features; ``None`` (default) is channels-last on CUDA, where the
    tensor cores want it, and the plain layout elsewhere.
    """

    channels_last: bool | None = None

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        img_channels,
        is_last,
        architecture="skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        use_fp16=False,
        fp16_channels_last=False,
        **layer_kwargs,
    ):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown synthesis architecture {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        # Half precision is a speed option of the original CUDA code; this implementation computes in float32.
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                up=2,
                resample_filter=resample_filter,
                conv_clamp=conv_clamp,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels,
            out_channels,
            w_dim=w_dim,
            resolution=resolution,
            conv_clamp=conv_clamp,
            **layer_kwargs,
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter
            )

    def style_layers(self) -> list[tuple[str, str, nn.Module]]:
        """(name suffix, kind, module) of the layers that take a style, in StyleSpace order."""
        layers = []
        if self.in_channels != 0:
            layers.append(("conv0", "conv", self.conv0))
        layers.append(("conv1", "conv", self.conv1))
        if self.num_torgb:
            layers.append(("torgb", "torgb", self.torgb))
        return layers

    def conv_layers(self) -> list[SynthesisLayer]:
        """The block's modulated conv layers in order: [conv0,] conv1."""
        return [self.conv0, self.conv1] if self.in_channels != 0 else [self.conv1]

    @property
    def splits_layers(self) -> bool:
        """Whether the block's features are its conv layers applied one after the other (no residual branch),
        each computable in two parts (``SynthesisLayer.splits_linear``), so that the sweep can start a
        perturbed pass at any of them."""
        return self.architecture != "resnet" and all(layer.splits_linear for layer in self.conv_layers())

    def features_input(self, x, *, batch_size=None) -> torch.Tensor:
        """The input of the block's first conv layer: the learned constant (``batch_size`` copies) for the first
        block, else ``x`` in the block's memory format."""
        if self.in_channels == 0:
            return self._layout(self.const.unsqueeze(0).repeat([batch_size, 1, 1, 1]))
        x = self._layout(x)
        _check_shape("x", x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
        return x

    def forward_features(self, x, styles, *, noise_mode="const", fused_modconv=False, batch_size=None):
        """The block's feature path only (no image). ``styles``: the conv styles in order (conv0, conv1)."""
        it = iter(styles)
        n = batch_size if batch_size is not None else styles[0].shape[0]
        x = self.features_input(x, batch_size=n)
        if self.in_channels == 0:
            return self.conv1.forward_styles(x, next(it), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0.forward_styles(x, next(it), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1.forward_styles(
                x, next(it), noise_mode=noise_mode, fused_modconv=fused_modconv, gain=math.sqrt(0.5)
            )
            return y + x
        x = self.conv0.forward_styles(x, next(it), noise_mode=noise_mode, fused_modconv=fused_modconv)
        return self.conv1.forward_styles(x, next(it), noise_mode=noise_mode, fused_modconv=fused_modconv)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        last = self.channels_last if self.channels_last is not None else x.is_cuda
        return x.contiguous(memory_format=torch.channels_last) if last else x

    def forward_image(self, x, img, torgb_style, *, fused_modconv=False):
        """Up-sample the running image and add this block's toRGB output of features ``x``."""
        if img is not None:
            _check_shape("img", img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb.forward_styles(x, torgb_style, fused_modconv=fused_modconv)
            img = img + y if img is not None else y
        return img

    def forward_styles(self, x, img, styles, *, noise_mode="const", fused_modconv=False):
        conv_styles = styles[: self.num_conv]
        torgb_style = styles[self.num_conv] if self.num_torgb else None
        x = self.forward_features(x, conv_styles, noise_mode=noise_mode, fused_modconv=fused_modconv)
        img = self.forward_image(x, img, torgb_style, fused_modconv=fused_modconv)
        return x, img


@dataclass(frozen=True)
class StyleLayer:
    """One style layer in the flat StyleSpace vector."""

    name: str  # e.g. "b64.conv1"
    block: int  # index of the synthesis block
    resolution: int
    kind: str  # "conv" or "torgb"
    channels: int
    offset: int  # first index of this layer in the flat vector
    w_index: int  # which entry of ws feeds this layer's affine

    @property
    def stop(self) -> int:
        return self.offset + self.channels


class StyleLayout:
    """The layout of StyleSpace: every style layer, and the map between a global dimension and (layer, channel)."""

    def __init__(self, layers: Sequence[StyleLayer]):
        self.layers = tuple(layers)
        self.dims = sum(layer.channels for layer in self.layers)
        self._by_name = {layer.name: layer for layer in self.layers}
        starts = [layer.offset for layer in self.layers]
        self._starts = torch.tensor(starts, dtype=torch.long)

    @property
    def conv_dims(self) -> int:
        return sum(layer.channels for layer in self.layers if layer.kind == "conv")

    @property
    def torgb_dims(self) -> int:
        return sum(layer.channels for layer in self.layers if layer.kind == "torgb")

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def layer(self, name: str) -> StyleLayer:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no style layer named {name!r}; layers are {list(self._by_name)}") from None

    def locate(self, dim: int) -> tuple[StyleLayer, int]:
        """Global dimension index -> (layer, channel within the layer)."""
        if not 0 <= dim < self.dims:
            raise IndexError(f"style dimension {dim} out of range [0, {self.dims})")
        i = int(torch.searchsorted(self._starts, torch.tensor(dim), right=True)) - 1
        layer = self.layers[i]
        return layer, dim - layer.offset

    def index(self, name: str, channel: int) -> int:
        """(layer name, channel) -> global dimension index."""
        layer = self.layer(name)
        if not 0 <= channel < layer.channels:
            raise IndexError(f"channel {channel} out of range for {name} ({layer.channels} channels)")
        return layer.offset + channel

    def split(self, styles: torch.Tensor) -> list[torch.Tensor]:
        """[N, D] -> one [N, channels] view per layer, in layout order."""
        _check_shape("styles", styles, [None, self.dims])
        return [styles[:, layer.offset : layer.stop] for layer in self.layers]

    def summary(self) -> list[dict]:
        return [
            dict(
                name=lyr.name,
                resolution=lyr.resolution,
                kind=lyr.kind,
                channels=lyr.channels,
                offset=lyr.offset,
            )
            for lyr in self.layers
        ]


class SynthesisNetwork(nn.Module):
    def __init__(
        self,
        w_dim,
        img_resolution,
        img_channels,
        channel_base=32768,
        channel_max=512,
        num_fp16_res=0,
        **block_kwargs,
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(
                in_channels,
                channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=is_last,
                use_fp16=(res >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def build_layout(self) -> StyleLayout:
        layers, offset, w_idx = [], 0, 0
        for bi, block in enumerate(self.blocks):
            for k, (suffix, kind, module) in enumerate(block.style_layers()):
                ch = module.style_channels
                layers.append(
                    StyleLayer(
                        f"b{block.resolution}.{suffix}", bi, block.resolution, kind, ch, offset, w_idx + k
                    )
                )
                offset += ch
            w_idx += block.num_conv
        return StyleLayout(layers)

    def styles_per_layer(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """ws [N, num_ws, w_dim] -> the style of every style layer, in layout order."""
        _check_shape("ws", ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        out, w_idx = [], 0
        for block in self.blocks:
            for k, (_, _, module) in enumerate(block.style_layers()):
                out.append(module.affine(ws[:, w_idx + k]))
            w_idx += block.num_conv
        return out

    def forward_styles(
        self,
        styles: Sequence[torch.Tensor],
        *,
        noise_mode="const",
        fused_modconv=False,
        start_block: int = 0,
        x=None,
        img=None,
    ):
        """Run the blocks from ``start_block`` on (with the features ``x`` and image ``img`` that the block
        before it produced), given one style tensor per style layer in layout order. Returns the image."""
        i = 0
        for bi, block in enumerate(self.blocks):
            n = len(block.style_layers())
            if bi >= start_block:
                x, img = block.forward_styles(
                    x, img, styles[i : i + n], noise_mode=noise_mode, fused_modconv=fused_modconv
                )
            i += n
        return img

    def forward(self, ws, noise_mode="const", fused_modconv=False, **_):
        return self.forward_styles(
            self.styles_per_layer(ws), noise_mode=noise_mode, fused_modconv=fused_modconv
        )


UP_MODES = ("auto", "transpose", "polyphase")


def set_synthesis_path(
    G: nn.Module, *, fast: bool = True, up_mode: str = "auto", channels_last: bool | None = None
) -> nn.Module:
    """Choose how ``G`` (a ``Generator`` or ``SynthesisNetwork``) computes: the fast layers or the reference ones,
    the up-sampling of the fast path, the memory format (``None``: channels-last on CUDA). Same images either way,
    up to float rounding. Returns ``G``."""
    if up_mode not in UP_MODES:
        raise ValueError(f"up_mode must be one of {UP_MODES}, got {up_mode!r}")
    for m in G.modules():
        if isinstance(m, SynthesisLayer):
            m.fast, m.up_mode = fast, up_mode
        elif isinstance(m, ToRGBLayer):
            m.fast = fast
        elif isinstance(m, SynthesisBlock):
            m.channels_last = channels_last
    return G


class Generator(nn.Module):
    """StyleGAN2-ADA generator: mapping network + synthesis network, with a StyleSpace interface.

    Constructor keyword arguments are those of stylegan2-ada-pytorch's ``Generator`` (``z_dim``, ``c_dim``,
    ``w_dim``, ``img_resolution``, ``img_channels``, ``mapping_kwargs``, ``synthesis_kwargs``); they are kept in
    ``init_kwargs`` and saved with our checkpoints. Images are in [-1, 1] (nominally), shape [N, C, H, W].
    """

    def __init__(
        self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, synthesis_kwargs=None
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        self.init_kwargs = copy.deepcopy(
            dict(
                z_dim=z_dim,
                c_dim=c_dim,
                w_dim=w_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                mapping_kwargs=mapping_kwargs,
                synthesis_kwargs=synthesis_kwargs,
            )
        )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs
        )

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

    @cached_property
    def style_layout(self) -> StyleLayout:
        return self.synthesis.build_layout()

    def _broadcast_ws(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).repeat([1, self.num_ws, 1])
        _check_shape("ws", ws, [None, self.num_ws, self.w_dim])
        return ws

    def styles_from_w(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] (or [N, w_dim], broadcast) -> flat styles [N, D]."""
        return torch.cat(self.synthesis.styles_per_layer(self._broadcast_ws(ws)), dim=1)

    def synthesize(self, ws: torch.Tensor, *, noise_mode: str = "const", fused_modconv: bool = False):
        """ws [N, num_ws, w_dim] (or [N, w_dim]) -> images [N, C, H, W]."""
        return self.synthesis(self._broadcast_ws(ws), noise_mode=noise_mode, fused_modconv=fused_modconv)

    def synthesize_from_styles(
        self, styles: torch.Tensor, *, noise_mode: str = "const", fused_modconv: bool = False
    ):
        """Flat styles [N, D] -> images [N, C, H, W]; the same image as ``synthesize`` for ``styles_from_w(ws)``."""
        return self.synthesis.forward_styles(
            self.style_layout.split(styles), noise_mode=noise_mode, fused_modconv=fused_modconv
        )

    def mean_w(self, num_samples: int = 10_000, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
        """The mean of w over ``num_samples`` random z, [w_dim] (w_avg is its running estimate from training)."""
        gen = torch.Generator().manual_seed(seed)
        total = torch.zeros(self.w_dim, dtype=torch.float64)
        device = next(self.parameters()).device
        with torch.no_grad():
            for start in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - start)
                z = torch.randn([n, self.z_dim], generator=gen).to(device)
                c = torch.zeros([n, self.c_dim], device=device) if self.c_dim else None
                total += self.mapping(z, c)[:, 0].double().sum(0).cpu()
        return (total / num_samples).float()


# ---------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    def __init__(
        self,
        in_channels,
        tmp_channels,
        out_channels,
        resolution,
        img_channels,
        first_layer_idx,
        architecture="resnet",
        activation="lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        use_fp16=False,
        fp16_channels_last=False,
        freeze_layers=0,
    ):
        if in_channels not in (0, tmp_channels):
            raise ValueError("in_channels must be 0 (first block) or tmp_channels")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown discriminator architecture {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_layers = 0

        def trainable() -> bool:
            idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common
            )
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            down=2,
            trainable=trainable(),
            resample_filter=resample_filter,
            **common,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                down=2,
                trainable=trainable(),
                resample_filter=resample_filter,
            )

    def forward(self, x, img):
        if self.in_channels == 0 or self.architecture == "skip":
            _check_shape("img", img, [None, self.img_channels, self.resolution, self.resolution])
            y = self.fromrgb(img.to(torch.float32))
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            return y + x, img
        return self.conv1(self.conv0(x)), img


class MinibatchStdLayer(nn.Module):
    """Appends the mean standard deviation over groups of the minibatch as extra feature maps."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"batch size {n} must be a multiple of the minibatch-stddev group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(
        self,
        in_channels,
        cmap_dim,
        resolution,
        img_channels,
        architecture="resnet",
        mbstd_group_size=4,
        mbstd_num_channels=1,
        activation="lrelu",
        conv_clamp=None,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        _check_shape("x", x, [None, self.in_channels, self.resolution, self.resolution])
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2-ADA discriminator (resnet architecture by default); returns one logit per image, [N, 1]."""

    def __init__(
        self,
        c_dim,
        img_resolution,
        img_channels,
        architecture="resnet",
        channel_base=32768,
        channel_max=512,
        num_fp16_res=0,
        conv_clamp=None,
        cmap_dim=None,
        block_kwargs=None,
        mapping_kwargs=None,
        epilogue_kwargs=None,
    ):
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.init_kwargs = copy.deepcopy(
            dict(
                c_dim=c_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                architecture=architecture,
                channel_base=channel_base,
                channel_max=channel_max,
                num_fp16_res=num_fp16_res,
                conv_clamp=conv_clamp,
                cmap_dim=cmap_dim,
                block_kwargs=block_kwargs,
                mapping_kwargs=mapping_kwargs,
                epilogue_kwargs=epilogue_kwargs,
            )
        )
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(
                in_channels,
                channels[res],
                channels[res // 2],
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=(res >= fp16_resolution),
                **block_kwargs,
                **common,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common
        )

    def forward(self, img, c=None, **_):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


# ---------------------------------------------------------------------------------------------------------------
# Configurations

PRESETS: dict[str, dict] = {
    # The configuration of papers/003: 256x256, channel_base 16384 (stylegan2-ada-pytorch "paper256").
    "paper256": dict(
        resolution=256, channel_base=16384, channel_max=512, z_dim=512, w_dim=512, mapping_layers=8
    ),
    # The demo study's small networks, sized so that training fits in a few hours of a 2-core CPU.
    "demo128": dict(
        resolution=128, channel_base=2048, channel_max=128, z_dim=128, w_dim=128, mapping_layers=4
    ),
    "demo64": dict(resolution=64, channel_base=2048, channel_max=128, z_dim=128, w_dim=128, mapping_layers=4),
}


def generator_kwargs(preset: str, *, img_channels: int = 1, **overrides) -> dict:
    """Constructor kwargs of a ``Generator`` for a named preset (see ``PRESETS``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    p = {**PRESETS[preset], **overrides}
    return dict(
        z_dim=p["z_dim"],
        c_dim=0,
        w_dim=p["w_dim"],
        img_resolution=p["resolution"],
        img_channels=img_channels,
        mapping_kwargs=dict(num_layers=p["mapping_layers"]),
        synthesis_kwargs=dict(
            channel_base=p["channel_base"], channel_max=p["channel_max"], num_fp16_res=0, conv_clamp=None
        ),
    )


def discriminator_kwargs(preset: str, *, img_channels: int = 1, **overrides) -> dict:
    """Constructor kwargs of a ``Discriminator`` for a named preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    p = {**PRESETS[preset], **overrides}
    return dict(
        c_dim=0,
        img_resolution=p["resolution"],
        img_channels=img_channels,
        channel_base=p["channel_base"],
        channel_max=p["channel_max"],
    )
