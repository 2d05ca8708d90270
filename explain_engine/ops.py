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
