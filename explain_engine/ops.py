"""Low-level operations of the StyleGAN2-ADA architecture in plain PyTorch.

These reproduce the numerics of the reference implementation's portable code path (FIR resampling with a
[1, 3, 3, 1] filter, transposed-convolution up-sampling, bias + activation with gain and clamp, weight
modulation and demodulation), so that a network pickled by stylegan2-ada-pytorch gives the same images here.
No custom CUDA kernels: everything runs on the CPU and on any device PyTorch supports.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Activation name -> (function, default gain). The gain keeps the activation variance roughly constant.
ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
}


def setup_filter(taps: list[float] | torch.Tensor) -> torch.Tensor:
    """A normalised 2-D FIR filter from 1-D taps (outer product), as the reference builds it for short filters."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def _pad4(padding: int | list[int]) -> list[int]:
    if isinstance(padding, int):
        return [padding, padding, padding, padding]
    if len(padding) == 2:
        return [padding[0], padding[0], padding[1], padding[1]]
    return list(padding)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    up: int = 1,
    down: int = 1,
    padding: int | list[int] = 0,
    gain: float = 1.0,
) -> torch.Tensor:
    """Zero-insert up-sample, pad (negative = crop), convolve with the FIR filter ``f``, then down-sample.

    ``x``: [N, C, H, W]; ``f``: [fh, fw] float32 (None = identity); padding is [x0, x1, y0, y1] with respect to
    the up-sampled image.
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    # True convolution (not correlation): flip the filter before conv2d.
    k = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
    k = k[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, k, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, *, up: int = 2) -> torch.Tensor:
    """FIR up-sampling by ``up`` with output size exactly ``up`` times the input."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=[p0, p1, p0, p1], gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, *, down: int = 2) -> torch.Tensor:
    """FIR down-sampling by ``down`` with output size exactly the input divided by ``down``."""
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=[p0, p1, p0, p1])


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
) -> torch.Tensor:
    """2-D convolution with optional FIR up- or down-sampling, padding applied once with respect to the
    up-sampled image. ``flip_weight=True`` is correlation (``F.conv2d``'s convention)."""
    out_channels, in_per_group, kh, kw = w.shape
    fw = f.shape[-1] if f is not None else 1
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0, py1 = px0, px1
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0, py1 = px0, px1

    def conv(x, w, **kwargs):
        if not flip_weight:
            w = w.flip([2, 3])
        return F.conv2d(x, w, groups=groups, **kwargs)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1])
        return conv(x, w)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = conv(x, w)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1])
        return conv(x, w, stride=down)
    if up > 1:
        # Transposed strided convolution, then the FIR filter cleans up the zero-insertion images.
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        if flip_weight:  # transposed conv with flip_weight=True means the kernel must be flipped
            wt = wt.flip([2, 3])
        x = F.conv_transpose2d(x, wt, stride=up, padding=[pyt, pxt], groups=groups)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0:
        return conv(x, w, padding=[py0, px0])
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return conv(x, w)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale by its gain, clamp to +-clamp."""
    fn, def_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    x = fn(x)
    g = def_gain if gain is None else gain
    if g != 1:
        x = x * g
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = False,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution.

    ``x``: [N, I, H, W]; ``weight``: [O, I, k, k]; ``styles``: [N, I]. With ``fused_modconv`` the per-sample
    weights are built and run as one grouped convolution; otherwise the activations are scaled before and after a
    shared-weight convolution (mathematically the same, much faster for batches on the CPU).
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if styles.shape != (n, in_channels):
        raise ValueError(f"styles must be [{n}, {in_channels}], got {list(styles.shape)}")
    dcoefs = None
    if demodulate:
        # sum over (I, k, k) of (W * s)^2 = sum_i s_i^2 * sum_kk W_oi^2, computed without an [N, O, I, k, k] tensor
        wsq = weight.square().sum(dim=[2, 3])  # [O, I]
        dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt()  # [N, O]
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding, flip_weight=flip_weight
        )
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(
        x, w.to(x.dtype), f=resample_filter, up=up, padding=padding, groups=n, flip_weight=flip_weight
    )
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise
    return x


# ---------------------------------------------------------------------------------------------------------------
# Fast path of the synthesis layers. The functions below give the same numbers as the reference functions above
# (up to float rounding, checked in tests/engine/test_fast_synthesis.py) with fewer passes over the activations:
#
# * ``polyphase_up_weight`` folds the transposed convolution and the FIR filter that follows it into one ordinary
#   3x3 convolution with 4x the output channels, then a pixel shuffle (no zero-inserted image, no depthwise pass);
# * ``modulated_conv_act`` runs style scaling, the shared-weight convolution, demodulation, noise, bias, leaky
#   ReLU, gain and clamp as one convolution and one fused multiply-add (``addcmul``) plus an in-place activation;
# * ``modulated_1x1`` (toRGB) contracts the channels with per-sample weights in one batched matmul, so the
#   features are read once and no style-scaled copy is made.
#
# All keep the memory format of their input, so a network run in channels-last stays channels-last (the layout
# the GPU's tensor cores want).


def _fir_compose_full(w: torch.Tensor, fk: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every kernel of ``w`` [O, I, k, k] with the filter ``fk`` [t, t]:
    [O, I, k + t - 1, k + t - 1]."""
    o, i, kh, kw = w.shape
    th, tw = fk.shape
    out = F.conv2d(
        F.pad(w.reshape(o * i, 1, kh, kw), [tw - 1, tw - 1, th - 1, th - 1]),
        fk.flip([0, 1])[None, None].to(w.dtype),
    )
    return out.reshape(o, i, kh + th - 1, kw + tw - 1)


def polyphase_up_weight(weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Weight [4 * O, I, 3, 3] such that ``pixel_shuffle(conv2d(x, W, padding=1), 2)`` equals
    ``conv2d_resample(x, weight, f=f, up=2, padding=1, flip_weight=False)`` for a 3x3 ``weight`` [O, I, 3, 3]
    and a 4-tap separable FIR ``f`` [4, 4] (the StyleGAN2 up-sampling convolution).

    The transposed convolution then FIR is one 6x6 kernel on the zero-inserted image; each of the four output
    phases sees only 3x3 of its taps, on the low-resolution input.
    """
    o, i, kh, kw = weight.shape
    if (kh, kw) != (3, 3) or tuple(f.shape) != (4, 4):
        raise ValueError("polyphase up-sampling is defined for 3x3 weights and a 4x4 FIR filter")
    # FIR as applied after the transposed convolution: flipped, gain up^2 = 4; K[u] = sum_k w[k] fk[k - u]
    fk = (f * 4).flip([0, 1])
    combined = _fir_compose_full(weight, fk.flip([0, 1]))  # [O, I, 6, 6], index n = u + 3
    phase_taps = ([4, 2, 0], [5, 3, 1])  # output phase a -> taps of the combined kernel for rows r = -1, 0, 1
    phases = [combined[:, :, phase_taps[a]][:, :, :, phase_taps[b]] for a in (0, 1) for b in (0, 1)]
    return torch.stack(phases, dim=1).reshape(4 * o, i, 3, 3)


def modulated_conv_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    bias: torch.Tensor,
    noise: torch.Tensor | None,
    up: int,
    padding: int,
    resample_filter: torch.Tensor | None,
    act_gain: float,
    clamp: float | None,
    up_mode: str = "auto",
) -> torch.Tensor:
    """A modulated, demodulated convolution with noise, bias, leaky ReLU (slope 0.2), gain and clamp: the same
    result as ``bias_act(modulated_conv2d(...) , bias, act="lrelu", gain=act_gain, clamp=clamp)`` with fewer
    passes. ``up_mode`` for ``up=2``: ``"transpose"`` (transposed convolution + FIR, fewest multiply-adds) or
    ``"polyphase"`` (one dense convolution + pixel shuffle, 4x the multiply-adds of that layer, no depthwise
    pass) or ``"auto"``: polyphase on CUDA, where the depthwise FIR pass is the slowest kernel of the network
    (docs/benchmarks.md), transpose elsewhere.

    It is ``modulated_conv_finish(modulated_conv_linear(...), demodulation(weight, styles), ...)``: the sweep
    keeps the linear part of each layer and updates it for a change of one style channel."""
    y = modulated_conv_linear(
        x, weight, styles, up=up, padding=padding, resample_filter=resample_filter, up_mode=up_mode
    )
    return modulated_conv_finish(
        y, demodulation(weight, styles), bias=bias, noise=noise, act_gain=act_gain, clamp=clamp
    )


def demodulation(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """The demodulation coefficients [N, O] of a modulated convolution, in float32 (also under autocast):
    1 / sqrt(sum_i s_i^2 sum_kk W_oikk^2 + 1e-8), without building the [N, O, I, k, k] weights."""
    with torch.autocast(styles.device.type, enabled=False):
        wsq = weight.float().square().sum(dim=[2, 3])  # [O, I]
        return (styles.float().square() @ wsq.t() + 1e-8).rsqrt()


def modulated_conv_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    up: int,
    padding: int,
    resample_filter: torch.Tensor | None,
    up_mode: str = "auto",
) -> torch.Tensor:
    """The linear part of a modulated convolution: the shared-weight convolution (up-sampling when ``up=2``,
    see ``modulated_conv_act`` for ``up_mode``) of the style-scaled input, before demodulation."""
    n = x.shape[0]
    dt = x.dtype
    y = x * styles.to(dt).reshape(n, -1, 1, 1)
    if up == 2 and (up_mode == "polyphase" or (up_mode == "auto" and x.is_cuda)):
        y = F.pixel_shuffle(F.conv2d(y, polyphase_up_weight(weight, resample_filter).to(dt), padding=1), 2)
        if x.is_contiguous(memory_format=torch.channels_last):
            y = y.contiguous(memory_format=torch.channels_last)
        return y
    return conv2d_resample(y, weight.to(dt), f=resample_filter, up=up, padding=padding, flip_weight=(up == 1))


def modulated_conv_finish(
    y: torch.Tensor,
    dcoefs: torch.Tensor,
    *,
    bias: torch.Tensor,
    noise: torch.Tensor | None,
    act_gain: float,
    clamp: float | None,
) -> torch.Tensor:
    """Demodulation ``dcoefs`` [N, O], noise, bias, leaky ReLU (slope 0.2), gain and clamp of the linear part
    ``y`` [N, O, H, W] of a modulated convolution, as one fused multiply-add and an in-place activation."""
    n, dt = y.shape[0], y.dtype
    # lrelu(g * z) = g * lrelu(z) for g > 0: gain and demodulation fold into one scale, noise and bias into one offset
    scale = (dcoefs * act_gain).to(dt).reshape(n, -1, 1, 1)
    offset = (bias * act_gain).to(dt).reshape(1, -1, 1, 1)
    if noise is not None:
        offset = offset + (noise * act_gain).to(dt)
    y = torch.addcmul(offset, y, scale)
    y = F.leaky_relu_(y, 0.2) if not torch.is_grad_enabled() else F.leaky_relu(y, 0.2)
    if clamp is not None and clamp >= 0:
        y = y.clamp_(-clamp, clamp) if not torch.is_grad_enabled() else y.clamp(-clamp, clamp)
    return y


def single_channel_conv(
    x: torch.Tensor, weight: torch.Tensor, channels: torch.Tensor, *, up: int
) -> torch.Tensor:
    """For K rows: the contribution of input channel ``channels[k]`` alone to a 3x3 convolution (padding 1) of
    its input plane ``x[k]`` [K, h, w], i.e. ``conv(x_k e_c, weight)`` -> [K, O, H, W]. ``weight`` is the
    layer's dense equivalent: its own [O, I, 3, 3] weight (``up=1``, correlation) or its polyphase weight
    [4 * O, I, 3, 3] (``up=2``, followed here by the pixel shuffle). One batched matrix product of each row's
    3x3 patches with its channel's taps: O * 9 multiply-adds per output pixel instead of the layer's I * O * 9."""
    k, h, w = x.shape
    patches = F.unfold(x.unsqueeze(1), 3, padding=1)  # [K, 9, h * w]
    taps = weight[:, channels].transpose(0, 1).reshape(k, -1, 9).to(x.dtype)  # [K, O', 9]
    y = torch.bmm(taps, patches)  # [K, O', h * w]
    if up == 1:
        return y.reshape(k, -1, h, w)
    o = y.shape[1] // 4
    # pixel shuffle as one strided copy (out[., c, 2i + a, 2j + b] = y[., 4c + 2a + b, i, j])
    out = torch.empty(k, o, 2 * h, 2 * w, dtype=y.dtype, device=y.device)
    out.view(k, o, h, 2, w, 2).copy_(y.view(k, o, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3))
    return out


def modulated_1x1(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, bias: torch.Tensor, clamp: float | None
) -> torch.Tensor:
    """A modulated 1x1 convolution without demodulation, plus bias and clamp (toRGB): per-sample weights
    ``weight[:, :, 0, 0] * styles[n]`` contracted with the features in one batched matmul."""
    n, c, h, wd = x.shape
    dt = x.dtype
    w = weight[:, :, 0, 0].to(dt)[None] * styles.to(dt)[:, None, :]  # [N, O, C]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * wd, c), w.transpose(1, 2))  # [N, HW, O]
        y = y.reshape(n, h, wd, -1).permute(0, 3, 1, 2)
    else:
        y = torch.bmm(w, x.reshape(n, c, h * wd)).reshape(n, -1, h, wd)
    return bias_act(y, bias.to(dt), clamp=clamp)
