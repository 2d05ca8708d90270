"""Style-dimension sweep (papers/003 Section 2.2, Eq. 3-5), exact and fast.

For an image with style vector S and every style dimension d, the sweep clamps s_d to its low value (the minimum
over random samples, or a percentile) and, separately, to its high value, and records

    Delta-_d = C(S) - C(S^{d-})        Delta+_d = C(S^{d+}) - C(S)

in an array ``deltas[N, D, 2]`` (``[..., 0]`` = Delta-, ``[..., 1]`` = Delta+), alongside ``C(S)`` for every image.

Three modes compute it:

* ``naive``: one perturbed vector per generator + classifier pass, nothing reused (the reference).
* ``exact``: the same numbers, faster. Perturbations are batched. The base pass of each image keeps, for every
  conv layer, its input and the linear part of its output (the shared-weight convolution of the style-scaled
  input, before demodulation); a perturbation of channel c of that layer changes the linear part by
  ``ds * conv(x_c, W[:, c])``, one input channel's convolution (1/I of the layer's work), and the demodulation
  coefficients by a closed form, so the perturbed pass starts after the layer's convolution; a toRGB dimension changes only that toRGB layer's output, linearly (``delta = W[:, c] * gain * ds * x_c``), and
  the final image is the base image plus that change carried up by the (linear) FIR up-sampling, so toRGB
  dimensions need no generator pass at all. Runs under ``torch.inference_mode`` (bf16 autocast and
  channels-last on CUDA if asked).
* ``screening``: one backward pass per image gives dC/dS; the first-order estimates
  ``Delta+ ~ g_d (high_d - s_d)`` and ``Delta- ~ g_d (s_d - low_d)`` rank all dimensions, and the top
  ``screening_top_k`` dimensions of each image are then evaluated exactly. ``exact_mask[N, D]`` says which
  entries are exact.

Work is split into units (image chunk x dimension chunk) whose results go straight into a memory-mapped ``.npy``;
a ``done`` map written after each unit lets an interrupted sweep resume where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import device as devices
from .allocator import keep_freed_memory
from .device import CompiledOrEager, autocast_for, batch_bucket
from .ops import bias_act, single_channel_conv, upsample2d
from .params import check, param
from .ranges import StyleRanges

ProgressFn = Callable[[int, int, str], None]
AbortFn = Callable[[], bool]

MODES = ("naive", "exact", "screening")
#: Where a perturbed pass of a conv dimension starts: at its layer, from that layer's cached linear part updated
#: for the one changed channel ("layer", the default), or at the input of its block ("block").
REUSE = ("layer", "block")
CLAMPS = ("minmax", "percentile")

#: The largest error of a stored delta against float32, by the precision the sweep ran in: bf16 autocast on
#: CUDA gave deltas within 5.0e-4 of float32 naive ones on paper256 + DenseNet-121 and within 2.7e-2 on the demo
#: networks (bench/gpu.sh on an H200, docs/gpu.md); the larger is used. Selection treats dimensions within it of
#: its threshold as borderline (``explain_engine.selection``).
DELTA_TOLERANCE = {"float32": 0.0, "bf16": 2.7e-2}


def sweep_precision(device: torch.device, config: SweepConfig) -> str:
    """The precision a sweep's deltas are computed in on ``device``: "bf16" or "float32"."""
    return "bf16" if device.type == "cuda" and config.bf16_on_cuda else "float32"


def delta_tolerance(precision: str) -> float:
    """The numeric tolerance of deltas computed in ``precision`` (a key of ``DELTA_TOLERANCE``)."""
    if precision not in DELTA_TOLERANCE:
        raise ValueError(f"precision must be one of {tuple(DELTA_TOLERANCE)}, got {precision!r}")
    return DELTA_TOLERANCE[precision]


@dataclass
class SweepConfig:
    """How a sweep runs. Each parameter's default and bounds are here (see ``explain_engine.params``)."""

    mode: str = param("exact", choices=MODES, help="naive, exact or screening (gradient estimate)")
    clamp: str = param("minmax", choices=CLAMPS, help="clamp to the sampled min/max, or to percentiles")
    percentile: float | None = param(
        None, min=0.0, max=50.0, help='with clamp="percentile": low = p-th, high = (100 - p)-th percentile'
    )
    batch_size: int = param(
        16, min=1, max=4096, help="perturbed images per pass (16 is fastest on the CPU; larger suits a GPU)"
    )
    image_chunk: int = param(8, min=1, max=4096, help="images per unit")
    dim_chunk: int = param(512, min=1, max=65536, help="dimensions per unit")
    screening_top_k: int = param(
        64, min=1, max=10000, help="dimensions per image evaluated exactly in screening mode"
    )
    bf16_on_cuda: bool = True

    def __post_init__(self):
        check(self)


@dataclass
class SweepUnit:
    index: int
    image_start: int
    image_stop: int
    dim_start: int
    dim_stop: int


@dataclass
class SweepResult:
    deltas: np.ndarray  # [N, D, 2] float32: Delta-, Delta+
    base_probs: np.ndarray  # [N] float32: C(S)
    low: np.ndarray  # [D] the clamp values
    high: np.ndarray  # [D]
    exact_mask: np.ndarray | None  # [N, D] bool in screening mode, None when every entry is exact
    config: dict = field(default_factory=dict)
    precision: str = "float32"  # of this run's deltas: "bf16" or "float32" (see ``sweep_precision``)
    seconds: float = 0.0
    perturbations: int = 0  # perturbed images actually evaluated by this run
    #: perturbed images the requested units took, counting units finished by an earlier run (their count as
    #: recorded then): what the requested units cost, however many runs it took to finish them
    unit_perturbations: int = 0

    @property
    def perturbations_per_second(self) -> float:
        return self.perturbations / self.seconds if self.seconds > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# Unit planning and storage


def plan_units(num_images: int, dims: int, config: SweepConfig) -> list[SweepUnit]:
    """Split the sweep into units of ``image_chunk`` images x ``dim_chunk`` dimensions (screening: all dims)."""
    dim_chunk = dims if config.mode == "screening" else config.dim_chunk
    units = []
    for i0 in range(0, num_images, config.image_chunk):
        for d0 in range(0, dims, dim_chunk):
            units.append(
                SweepUnit(
                    len(units), i0, min(i0 + config.image_chunk, num_images), d0, min(d0 + dim_chunk, dims)
                )
            )
    return units


class SweepStore:
    """Files of one sweep in a folder: ``deltas.npy`` [N, D, 2], ``base_probs.npy`` [N], ``done.npy`` [units],
    ``perturbations.npy`` [units] (perturbed images each finished unit took), ``exact_mask.npy`` [N, D]
    (screening), and ``sweep.json`` describing the run. Opened with memory maps so
    that units write straight to disk and a rerun skips units already done."""

    def __init__(
        self,
        folder: str | Path,
        *,
        num_images: int,
        dims: int,
        units: int,
        config: SweepConfig,
        fingerprint: dict,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta_path = self.folder / "sweep.json"
        meta = {
            "num_images": num_images,
            "dims": dims,
            "units": units,
            "config": asdict(config),
            "fingerprint": fingerprint,
        }
        fresh = not meta_path.exists()
        if not fresh:
            old = json.loads(meta_path.read_text())
            if {k: old.get(k) for k in meta} != meta:
                raise ValueError(
                    f"{self.folder} holds a different sweep (other images, model or settings); "
                    f"use a new folder"
                )
        self.deltas = self._open("deltas.npy", (num_images, dims, 2), np.float32, np.nan, fresh)
        self.base_probs = self._open("base_probs.npy", (num_images,), np.float32, np.nan, fresh)
        self.done = self._open("done.npy", (units,), np.bool_, False, fresh)
        self.perturbations = self._open("perturbations.npy", (units,), np.int64, 0, fresh)
        self.exact_mask = (
            self._open("exact_mask.npy", (num_images, dims), np.bool_, False, fresh)
            if config.mode == "screening"
            else None
        )
        if fresh:
            meta_path.write_text(json.dumps(meta, indent=1))

    def _open(self, name, shape, dtype, fill, fresh):
        path = self.folder / name
        if fresh or not path.exists():
            arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            arr[...] = fill
            arr.flush()
            return arr
        arr = np.load(path, mmap_mode="r+")
        if arr.shape != shape:
            raise ValueError(f"{path} has shape {arr.shape}, expected {shape}")
        return arr

    def record_precision(self, precision: str) -> None:
        """Note that some units were computed in ``precision``. Units may run on several workers, some on a GPU
        in bf16 and some on a CPU: a marker file per reduced precision (written once, never removed) makes the
        folder's precision the lowest any unit had, whichever worker wrote it."""
        if precision != "float32":
            (self.folder / f"precision-{precision}").touch()

    def mark_done(self, unit: SweepUnit, perturbations: int) -> None:
        # Data first, then the done flag: a crash in between only repeats this unit.
        self.deltas.flush()
        self.base_probs.flush()
        if self.exact_mask is not None:
            self.exact_mask.flush()
        self.perturbations[unit.index] = perturbations
        self.perturbations.flush()
        self.done[unit.index] = True
        self.done.flush()


# ---------------------------------------------------------------------------------------------------------------
# The sweep engine


class StyleSweeper:
    """Evaluates the classifier on clamped style vectors for one generator, classifier and clamp range.

    Perturbations of several images are pooled: ``base_pass`` caches, for a batch of images, the input of every
    synthesis block, what each conv layer's perturbed passes start from (``reuse="layer"``; with
    ``reuse="block"`` they start at the input of the layer's block, which is also the fallback for blocks with
    a residual branch or reference-path layers) and every toRGB layer's features; ``evaluate`` then takes any
    list of (image, dimension, value) entries, groups them by layer, and runs each group in batches of
    ``config.batch_size`` rows gathered from the cached parts of their own images. The classifier sees full
    batches pooled over layers and images.
    """

    def __init__(
        self,
        G,
        classifier,
        low: torch.Tensor,
        high: torch.Tensor,
        config: SweepConfig,
        *,
        compile_models: bool = False,
        reuse: str = "layer",
    ):
        if reuse not in REUSE:
            raise ValueError(f"reuse must be one of {REUSE}, got {reuse!r}")
        self.G = G
        self.C = classifier
        self.cfg = config
        self.device = next(G.parameters()).device
        self.layout = G.style_layout
        self.low = low.to(self.device).float()
        self.high = high.to(self.device).float()
        self.blocks = G.synthesis.blocks
        self.block_first_layer = {}
        for li, layer in enumerate(self.layout):
            self.block_first_layer.setdefault(layer.block, li)
        # per global dimension: its layer, block, channel and whether it is a toRGB dimension
        layer_of = np.zeros(self.layout.dims, np.int64)
        for li, layer in enumerate(self.layout):
            layer_of[layer.offset : layer.stop] = li
        self._layer_of = layer_of
        self._block_of = np.array([self.layout.layers[li].block for li in layer_of], np.int64)
        self._channel_of = np.arange(self.layout.dims) - np.array(
            [self.layout.layers[li].offset for li in layer_of]
        )
        self._torgb = np.array([self.layout.layers[li].kind == "torgb" for li in layer_of])
        # conv layers whose perturbed passes start at the layer itself (``reuse="layer"``): layer index ->
        # (block, position among the block's conv layers, module, dense 3x3 weight, sum over taps of W^2 [O, I])
        self.reuse = reuse
        self._layer_start: dict[int, tuple[int, int, torch.nn.Module, torch.Tensor, torch.Tensor]] = {}
        for bi, block in enumerate(self.blocks):
            if reuse != "layer" or not block.splits_layers:
                continue
            for j, layer in enumerate(block.conv_layers()):
                with torch.no_grad():
                    dense = layer.dense_weight().detach().float()
                    wsq = layer.weight.detach().float().square().sum(dim=[2, 3])
                self._layer_start[self.block_first_layer[bi] + j] = (bi, j, layer, dense, wsq)
        self.cuda = self.device.type == "cuda"
        self._block_layers = [len(block.style_layers()) for block in self.blocks]
        # The passes of perturbed images: eager, or compiled on CUDA when asked (``compile_models``).
        self._block_fns = [block.forward_styles for block in self.blocks]
        self._classifier_fn = self.C
        self.compiled = bool(compile_models and devices.compiles_on(self.device))
        if self.compiled:
            self._block_fns = [
                CompiledOrEager(block.forward_styles, name=f"synthesis block {bi}")
                for bi, block in enumerate(self.blocks)
            ]
            self._classifier_fn = CompiledOrEager(self.C, name="the classifier")
        if self.cuda:
            torch.backends.cudnn.benchmark = True

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _autocast(self):
        return autocast_for(self.device, bf16=self.cfg.bf16_on_cuda)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """C of a batch of images -> [N]; on CUDA in chunks of at most ``batch_size`` rows, the last padded to a
        bucket size (``batch_bucket``)."""
        # Generated images can leave [-1, 1] slightly; the classifier sees them as a display would.
        images = images.clamp(-1, 1)
        if not self.cuda:
            return self._classifier_fn(images).float()
        images = images.contiguous(memory_format=torch.channels_last)
        bs, n = self.cfg.batch_size, images.shape[0]
        out = []
        for start in range(0, n, bs):
            chunk = images[start : start + bs]
            rows = chunk.shape[0]
            chunk = _pad_rows(chunk, batch_bucket(rows, bs))
            out.append(self._classifier_fn(chunk)[:rows].float())
        return torch.cat(out) if len(out) > 1 else out[0]

    def _split(self, s: torch.Tensor) -> list[torch.Tensor]:
        return self.layout.split(s)

    def clamp_values(self, dims: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(dims, device=self.device, dtype=torch.long)
        return self.low[idx], self.high[idx]

    # -- base pass with cached block inputs ------------------------------------------------------------------------
    def base_pass(self, s: torch.Tensor) -> dict:
        """The unperturbed pass of a batch of images [M, D]: the input (x, img) of every block, for every conv
        layer that perturbed passes start at (``reuse="layer"``) its input, the linear part of its output and
        its sum of squared modulated weights per output channel, every toRGB layer's features and
        pre-activation output, the final images and C(S) [M]."""
        styles = self._split(s)
        x = img = None
        cache: dict = {"block_in": [], "torgb": {}, "styles": styles, "layers": {}}
        li = 0
        for bi, block in enumerate(self.blocks):
            cache["block_in"].append((x, img))
            n_layers = len(block.style_layers())
            block_styles = styles[li : li + n_layers]
            if li in self._layer_start:  # layer by layer, keeping what a perturbed pass starts from
                x = block.features_input(x, batch_size=s.shape[0])
                for j, layer in enumerate(block.conv_layers()):
                    wsq = self._layer_start[li + j][4]
                    y = layer.linear(x, block_styles[j])
                    with torch.autocast(self.device.type, enabled=False):
                        ssq = block_styles[j].float().square() @ wsq.t()  # [M, O]
                    cache["layers"][li + j] = (x, y, ssq)
                    x = layer.finish(y, (ssq + 1e-8).rsqrt(), noise_mode="const")
            else:
                x = block.forward_features(
                    x, block_styles[: block.num_conv], noise_mode="const", batch_size=s.shape[0]
                )
            if block.num_torgb:
                t = block.torgb
                style = (block_styles[block.num_conv] * t.weight_gain).to(x.dtype)
                pre = torch.einsum("nchw,oc,nc->nohw", x, t.weight[:, :, 0, 0].to(x.dtype), style)
                cache["torgb"][bi] = (x, pre)
            img = block.forward_image(x, img, block_styles[block.num_conv] if block.num_torgb else None)
            li += n_layers
        cache["image"] = img
        cache["prob"] = self.classify(img)
        return cache

    def _run_from_layer(
        self, li: int, cache: dict, rows: torch.Tensor, channels: torch.Tensor, new_values: torch.Tensor
    ) -> torch.Tensor:
        """Images after setting channel ``channels[k]`` of conv layer ``li`` of cached image ``rows[k]`` to
        ``new_values[k]``: the layer's cached linear part plus that one channel's convolution, its demodulation
        updated in closed form, then the rest of the generator."""
        bi, j, layer, dense, wsq = self._layer_start[li]
        block = self.blocks[bi]
        k = rows.shape[0]
        padded = batch_bucket(k, self.cfg.batch_size) if self.cuda else k
        if padded != k:  # a tail chunk on CUDA: repeat its last row up to the bucket size
            rows, channels, new_values = (_pad_rows(t, padded) for t in (rows, channels, new_values))
        x_in, y, ssq = cache["layers"][li]
        one_image = bool((rows == rows[0]).all())
        base_rows = rows[:1] if one_image else rows  # one image: broadcast its cached parts, no copy
        old = cache["styles"][li][rows, channels].float()
        ds = new_values.float() - old
        dy = single_channel_conv(
            x_in[rows, channels] * ds.to(x_in.dtype)[:, None, None], dense, channels, up=layer.up
        )
        y = y[base_rows] + dy.to(y.dtype)
        with torch.autocast(self.device.type, enabled=False):
            # sum_i s_i^2 sum_kk W_oi^2 with s_c changed: add (s_c'^2 - s_c^2) * sum_kk W_oc^2
            dcoefs = (
                ssq[base_rows]
                + (new_values.float().square() - old.square())[:, None] * wsq[:, channels].t()
                + 1e-8
            ).rsqrt()
        x = block._layout(layer.finish(y, dcoefs, noise_mode="const"))
        styles_k = [st[base_rows] for st in cache["styles"]]
        if one_image:
            styles_k = [st.expand(padded, -1) for st in styles_k]
        first = self.block_first_layer[bi]
        for later in range(j + 1, block.num_conv):
            x = block.conv_layers()[later].forward_styles(x, styles_k[first + later], noise_mode="const")
        img = cache["block_in"][bi][1]
        if img is not None:
            img = img[rows[:1]].expand(padded, -1, -1, -1) if one_image else img[rows]
        img = block.forward_image(x, img, styles_k[first + block.num_conv] if block.num_torgb else None)
        first += self._block_layers[bi]
        for b in range(bi + 1, len(self.blocks)):
            n = self._block_layers[b]
            x, img = self._block_fns[b](x, img, styles_k[first : first + n], noise_mode="const")
            first += n
        return img[:k]

    def _run_from_block(self, bi: int, cache: dict, rows: torch.Tensor, styles_k: list[torch.Tensor]):
        """Images for K perturbed style sets (per-layer tensors [K, ch]) of the cached images ``rows`` [K],
        starting at block ``bi``."""
        x, img = cache["block_in"][bi]
        k = styles_k[0].shape[0]
        padded = batch_bucket(k, self.cfg.batch_size) if self.cuda else k
        if padded != k:  # a tail chunk on CUDA: repeat its last row up to the bucket size
            rows = _pad_rows(rows, padded)
            styles_k = [_pad_rows(st, padded) for st in styles_k]
        if not self.compiled and bool((rows == rows[0]).all()):  # one image: a broadcast view, no copy
            # (compiled blocks always get gathered rows: one memory layout, so one graph per block)
            x = x[rows[:1]].expand(padded, -1, -1, -1) if x is not None else None
            img = img[rows[:1]].expand(padded, -1, -1, -1) if img is not None else None
        else:
            x = x[rows] if x is not None else None
            img = img[rows] if img is not None else None
        first = self.block_first_layer[bi]
        for b in range(bi, len(self.blocks)):
            n = self._block_layers[b]
            x, img = self._block_fns[b](x, img, styles_k[first : first + n], noise_mode="const")
            first += n
        return img[:k]

    def _torgb_images(
        self, bi: int, cache: dict, rows: torch.Tensor, channels: torch.Tensor, new_values: torch.Tensor
    ) -> torch.Tensor:
        """Images after setting toRGB style channel ``channels[k]`` of block ``bi`` of image ``rows[k]`` to
        ``new_values[k]``."""
        block = self.blocks[bi]
        t = block.torgb
        feats, pre = cache["torgb"][bi]
        li = self.block_first_layer[bi] + block.num_conv
        ds = new_values - cache["styles"][li][rows, channels]  # [K]
        # change of the 1x1 conv output: W[:, c] * gain * ds * x_c  -> [K, img_channels, r, r]
        w = t.weight[:, :, 0, 0][:, channels].t()  # [K, img_channels]
        dpre = (w * (t.weight_gain * ds)[:, None])[:, :, None, None].to(feats.dtype) * feats[rows, channels][
            :, None
        ]
        if t.conv_clamp is None:  # bias + identity is linear: the change passes through unchanged
            dy = dpre
        else:
            p = pre[rows]
            dy = bias_act(p + dpre, t.bias, clamp=t.conv_clamp) - bias_act(p, t.bias, clamp=t.conv_clamp)
        for later in self.blocks[bi + 1 :]:
            dy = upsample2d(dy, later.resample_filter)
        return cache["image"][rows] + dy

    # -- evaluation ------------------------------------------------------------------------------------------------
    def evaluate(
        self, cache: dict, rows: Sequence[int], dims: Sequence[int], values: torch.Tensor
    ) -> torch.Tensor:
        """C(S) of cached image ``rows[k]`` with style dimension ``dims[k]`` set to ``values[k]``, for every k -> [K].

        Conv dimensions start from their layer's cached parts (or their block's cached input; rows of every
        image in one batch); toRGB dimensions are the base image plus their linear change. Images of all groups are pooled so the
        classifier sees full batches.
        """
        rows_np = np.asarray(rows, np.int64)
        dims_np = np.asarray(dims, np.int64)
        values = values.to(self.device).float()
        probs = torch.empty(len(dims_np), device=self.device)
        blocks, torgb = self._block_of[dims_np], self._torgb[dims_np]
        pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        pending_rows = 0
        bs = self.cfg.batch_size

        def flush():
            idx = torch.cat([i for i, _ in pending])
            probs[idx] = self.classify(torch.cat([im for _, im in pending]))
            pending.clear()

        # group by layer, in order of layer so that early (expensive) layers pool with each other
        layers_all = self._layer_of[dims_np]
        order = np.argsort(layers_all, kind="stable")
        bounds = np.flatnonzero(np.diff(layers_all[order])) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            li = int(layers_all[group[0]])
            bi, is_torgb = int(blocks[group[0]]), bool(torgb[group[0]])
            for start in range(0, group.size, bs):
                chunk = group[start : start + bs]
                idx = torch.as_tensor(chunk, device=self.device)
                r = torch.as_tensor(rows_np[chunk], device=self.device)
                ch = torch.as_tensor(self._channel_of[dims_np[chunk]], device=self.device)
                v = values[idx]
                if is_torgb:
                    imgs = self._torgb_images(bi, cache, r, ch, v)
                elif li in self._layer_start:
                    imgs = self._run_from_layer(li, cache, r, ch, v)
                else:
                    styles_k = [st[r] for st in cache["styles"]]
                    styles_k[li][torch.arange(len(chunk), device=self.device), ch] = v.to(styles_k[li].dtype)
                    imgs = self._run_from_block(bi, cache, r, styles_k)
                pending.append((idx, imgs))
                pending_rows += len(chunk)
                if pending_rows >= bs:
                    flush()
                    pending_rows = 0
        if pending:
            flush()
        return probs

    def evaluate_clamped(self, cache: dict, rows: Sequence[int], dims: Sequence[int]) -> torch.Tensor:
        """C(S^{d-}) and C(S^{d+}) of cached image ``rows[k]`` and dimension ``dims[k]`` -> [K, 2]."""
        dims_t = torch.as_tensor(np.asarray(dims, np.int64), device=self.device)
        low, high = self.low[dims_t], self.high[dims_t]
        both_rows = np.repeat(np.asarray(rows, np.int64), 2)
        both_dims = np.repeat(np.asarray(dims, np.int64), 2)
        values = torch.stack([low, high], dim=1).flatten()  # entry 2k: clamped low, 2k + 1: clamped high
        return self.evaluate(cache, both_rows, both_dims, values).reshape(-1, 2)

    def evaluate_exact(self, s: torch.Tensor, dims: Sequence[int], cache: dict | None = None) -> torch.Tensor:
        """C(S^{d-}) and C(S^{d+}) for the given dims of one image [1, D] -> [len(dims), 2]."""
        cache = cache if cache is not None else self.base_pass(s)
        return self.evaluate_clamped(cache, [0] * len(dims), list(dims))

    def evaluate_naive(self, s: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
        """Reference: one full pass per perturbed vector. -> [len(dims), 2]"""
        out = torch.empty(len(dims), 2, device=self.device)
        low, high = self.clamp_values(list(dims))
        for j, d in enumerate(dims):
            for k, v in enumerate((low[j], high[j])):
                s2 = s.clone()
                s2[0, d] = v
                out[j, k] = self.classify(self.G.synthesize_from_styles(s2, noise_mode="const"))[0]
        return out

    def gradient(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(C(S) [N], dC/dS [N, D]) by one backward pass."""
        with torch.enable_grad():
            s = s.detach().clone().requires_grad_(True)
            p = self.C(self.G.synthesize_from_styles(s, noise_mode="const").clamp(-1, 1)).float()
            (g,) = torch.autograd.grad(p.sum(), s)
        return p.detach(), g.detach()


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with its last row repeated up to ``rows`` rows (``t`` itself when it has them)."""
    missing = rows - t.shape[0]
    if missing <= 0:
        return t
    return torch.cat([t, t[-1:].expand(missing, *t.shape[1:])])


def screening_estimates(
    s: torch.Tensor, grad: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """First-order estimates [N, D, 2] of (Delta-, Delta+) from the gradient dC/dS."""
    return torch.stack([grad * (s - low), grad * (high - s)], dim=-1)


def fingerprint(styles: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> dict:
    """An identity of the sweep inputs (hashes of their float32 bytes), to refuse resuming into the folder of
    another sweep. Byte hashes, unlike sums, do not depend on the thread count of the process computing them."""

    def h(t: torch.Tensor) -> str:
        data = t.detach().to(torch.float32).cpu().contiguous().numpy().tobytes()
        return hashlib.sha256(data).hexdigest()[:32]

    return {"styles": h(styles), "low": h(low), "high": h(high)}


def sweep_deltas(
    G,
    classifier,
    styles: torch.Tensor,
    ranges: StyleRanges | tuple[torch.Tensor, torch.Tensor],
    *,
    config: SweepConfig | None = None,
    out_dir: str | Path | None = None,
    units: Sequence[int] | None = None,
    progress_fn: ProgressFn | None = None,
    abort_fn: AbortFn | None = None,
    compile_models: bool = False,
    reuse: str = "layer",
) -> SweepResult:
    """Sweep every style dimension of every image (``styles`` [N, D]) and return the deltas (Eq. 4-5).

    ``ranges``: a ``StyleRanges`` (clamped to min/max or percentiles per ``config.clamp``) or explicit
    ``(low, high)`` tensors [D]. With ``out_dir`` the arrays live in memory-mapped files there and finished
    units are skipped on a rerun; ``units`` restricts the run to those unit indices (for spreading one sweep over
    several workers). Stops between units, leaving the files consistent, when ``abort_fn()`` is true (then
    raises ``InterruptedError``). ``compile_models``: on CUDA, run the perturbed passes (the synthesis blocks and
    the classifier) under ``torch.compile`` (a one-off compilation of a minute or two per process, then faster
    passes; the CPU ignores it). ``reuse``: where perturbed passes of conv dimensions start (``REUSE``; the
    results agree to float rounding, "block" is there to measure what "layer" saves).
    """
    cfg = config or SweepConfig()
    G.eval().requires_grad_(False)
    classifier.eval().requires_grad_(False)
    device = next(G.parameters()).device
    if device.type == "cpu":
        keep_freed_memory()
    if isinstance(ranges, StyleRanges):
        low, high = ranges.clamp_values(cfg.clamp, cfg.percentile)
    else:
        low, high = ranges
    n, dims = styles.shape
    if dims != G.style_layout.dims or low.numel() != dims or high.numel() != dims:
        raise ValueError(
            f"styles [N, {dims}] and ranges [{low.numel()}] must match the generator's "
            f"{G.style_layout.dims} style dimensions"
        )
    sweeper = StyleSweeper(G, classifier, low, high, cfg, compile_models=compile_models, reuse=reuse)
    plan = plan_units(n, dims, cfg)
    if out_dir is not None:
        store = SweepStore(
            out_dir,
            num_images=n,
            dims=dims,
            units=len(plan),
            config=cfg,
            fingerprint=fingerprint(styles, low, high),
        )
        deltas, base, done, exact_mask = store.deltas, store.base_probs, store.done, store.exact_mask
        unit_counts = store.perturbations
    else:
        store = None
        deltas = np.full((n, dims, 2), np.nan, np.float32)
        base = np.full(n, np.nan, np.float32)
        done = np.zeros(len(plan), bool)
        unit_counts = np.zeros(len(plan), np.int64)
        exact_mask = np.zeros((n, dims), bool) if cfg.mode == "screening" else None
    wanted = set(units) if units is not None else None
    requested = [u for u in plan if wanted is None or u.index in wanted]
    todo = [u for u in requested if not done[u.index]]
    precision = sweep_precision(device, cfg)
    if store is not None and todo:
        store.record_precision(precision)
    total = sum((u.image_stop - u.image_start) * (u.dim_stop - u.dim_start) for u in todo)
    finished, evaluated, t0 = 0, 0, time.time()
    for unit in todo:
        if abort_fn and abort_fn():
            raise InterruptedError("the sweep was cancelled; finished units are kept")
        count = _run_unit(sweeper, styles, unit, deltas, base, exact_mask, cfg, device)
        evaluated += count
        if store is not None:
            store.mark_done(unit, count)
        else:
            done[unit.index] = True
            unit_counts[unit.index] = count
        finished += (unit.image_stop - unit.image_start) * (unit.dim_stop - unit.dim_start)
        if progress_fn:
            rate = evaluated / max(time.time() - t0, 1e-9)
            progress_fn(finished, total, f"unit {unit.index + 1}/{len(plan)}, {rate:.0f} perturbations/s")
    return SweepResult(
        deltas=deltas,
        base_probs=base,
        low=low.cpu().numpy(),
        high=high.cpu().numpy(),
        exact_mask=exact_mask,
        config=asdict(cfg),
        seconds=time.time() - t0,
        perturbations=evaluated,
        unit_perturbations=int(sum(int(unit_counts[u.index]) for u in requested)),
        precision=precision,
    )


def refine_screening(
    G,
    classifier,
    styles: torch.Tensor,
    ranges: StyleRanges | tuple[torch.Tensor, torch.Tensor],
    deltas: np.ndarray,
    exact_mask: np.ndarray,
    dims: Sequence[int],
    *,
    config: SweepConfig | None = None,
    compile_models: bool = False,
) -> int:
    """Make the screened deltas of ``dims`` exact on every image: each (image, dimension) entry of ``dims`` that
    is still a first-order estimate (``exact_mask`` false) is evaluated exactly, in place in ``deltas`` [N, D, 2]
    and ``exact_mask`` [N, D]. Meant for the strongest dimensions of a screening sweep, so that their ranking
    no longer mixes estimates with exact values. Returns the number of perturbed images evaluated."""
    cfg = config or SweepConfig()
    G.eval().requires_grad_(False)
    classifier.eval().requires_grad_(False)
    device = next(G.parameters()).device
    low, high = ranges.clamp_values(cfg.clamp, cfg.percentile) if isinstance(ranges, StyleRanges) else ranges
    sweeper = StyleSweeper(G, classifier, low, high, cfg, compile_models=compile_models)
    wanted = np.asarray(sorted(set(int(d) for d in dims)), np.int64)
    evaluated = 0
    for start in range(0, styles.shape[0], cfg.image_chunk):
        stop = min(start + cfg.image_chunk, styles.shape[0])
        rows, cols = np.nonzero(~np.asarray(exact_mask[start:stop][:, wanted]))
        if rows.size == 0:
            continue
        chosen = wanted[cols]
        with torch.inference_mode(), sweeper._autocast():
            cache = sweeper.base_pass(styles[start:stop].to(device).float())
            probs = sweeper.evaluate_clamped(cache, rows, chosen).float()
            c0 = cache["prob"][torch.as_tensor(rows, device=probs.device)]
        exact = torch.stack([c0 - probs[:, 0], probs[:, 1] - c0], dim=-1).cpu().numpy()
        deltas[start + rows, chosen] = exact
        exact_mask[start + rows, chosen] = True
        evaluated += stop - start + 2 * rows.size
    return evaluated


def _run_unit(sweeper: StyleSweeper, styles, unit: SweepUnit, deltas, base, exact_mask, cfg, device) -> int:
    """Fill one unit's deltas; returns the number of perturbed images evaluated."""
    dims = list(range(unit.dim_start, unit.dim_stop))
    s_all = styles[unit.image_start : unit.image_stop].to(device).float()
    m = s_all.shape[0]
    with torch.inference_mode(cfg.mode != "screening"), sweeper._autocast():
        if cfg.mode == "screening":
            _, grad = sweeper.gradient(s_all)
            est = screening_estimates(s_all, grad, sweeper.low, sweeper.high)
            with torch.inference_mode():
                score = est.abs().amax(-1)  # [M, D]
                k = min(cfg.screening_top_k, score.shape[1])
                top = torch.topk(score, k, dim=1).indices.sort(dim=1).values  # [M, k]
                cache = sweeper.base_pass(s_all)
                c0 = cache["prob"]
                probs = sweeper.evaluate_clamped(
                    cache, np.repeat(np.arange(m), k), top.flatten().cpu().numpy()
                ).reshape(m, k, 2)
                row = est.clone().float()
                arange = torch.arange(m, device=row.device)[:, None]
                row[arange, top, 0] = c0[:, None] - probs[..., 0]
                row[arange, top, 1] = probs[..., 1] - c0[:, None]
                deltas[unit.image_start : unit.image_stop] = row.cpu().numpy()
                base[unit.image_start : unit.image_stop] = c0.cpu().numpy()
                mask = np.zeros(score.shape, bool)
                np.put_along_axis(mask, top.cpu().numpy(), True, axis=1)
                exact_mask[unit.image_start : unit.image_stop] = mask
            return m * (2 * k + 1)
        if cfg.mode == "naive":
            for j in range(m):
                s = s_all[j : j + 1]
                c0 = sweeper.classify(sweeper.G.synthesize_from_styles(s, noise_mode="const"))[0]
                probs = sweeper.evaluate_naive(s, dims)
                d = torch.stack([c0 - probs[:, 0], probs[:, 1] - c0], dim=-1)
                deltas[unit.image_start + j, unit.dim_start : unit.dim_stop] = d.float().cpu().numpy()
                base[unit.image_start + j] = float(c0)
        else:
            cache = sweeper.base_pass(s_all)
            c0 = cache["prob"]
            probs = sweeper.evaluate_clamped(
                cache, np.repeat(np.arange(m), len(dims)), np.tile(np.asarray(dims), m)
            ).reshape(m, len(dims), 2)
            d = torch.stack([c0[:, None] - probs[..., 0], probs[..., 1] - c0[:, None]], dim=-1)
            deltas[unit.image_start : unit.image_stop, unit.dim_start : unit.dim_stop] = (
                d.float().cpu().numpy()
            )
            base[unit.image_start : unit.image_stop] = c0.cpu().numpy()
    return m * (2 * len(dims) + 1)


def open_deltas(folder: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Memory-map a stored sweep: (deltas [N, D, 2], base_probs [N], metadata). The metadata's ``precision``
    is "bf16" when any unit was computed in bf16, else "float32"."""
    folder = Path(folder)
    meta = json.loads((folder / "sweep.json").read_text())
    meta["precision"] = "bf16" if (folder / "precision-bf16").exists() else "float32"
    return (
        np.load(folder / "deltas.npy", mmap_mode="r"),
        np.load(folder / "base_probs.npy", mmap_mode="r"),
        meta,
    )
