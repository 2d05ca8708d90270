"""Where the engine computes: one way to name a device, and the precision used on it.

Engine functions compute on the device of the models they are given. Loaders take ``device=`` and the CLI and
the web app's workers choose it once, by name, with ``resolve_device``:

* ``"auto"``: the first CUDA device when PyTorch sees one, else the CPU (a worker on a GPU machine uses its GPU
  with no other setting);
* ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: that device; asking for CUDA where there is none is an error that says so.

Precision policy (measured in ``bench/`` and stated in docs/benchmarks.md): on CUDA the sweep's forward passes
run under bf16 autocast; ranges, projection and the counterfactual methods compute in float32 unless their
configuration asks otherwise. The CPU always computes in float32.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceError(ValueError):
    """A device name that is malformed or names hardware this machine does not have."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """A device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``) -> ``torch.device``, checked against the machine."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    name = (spec or "auto").strip().lower()
    if name == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name.partition(":")[2]
        if index_text and not index_text.isdigit():
            raise DeviceError(f"device {spec!r} is not one of {DEVICE_CHOICES}")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} asked for, but PyTorch sees no CUDA GPU on this machine")
        index = int(index_text) if index_text else torch.cuda.current_device()
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"device {spec!r} asked for, but this machine has {count} CUDA GPU(s)")
        return torch.device("cuda", index)
    raise DeviceError(f"device {spec!r} is not one of {DEVICE_CHOICES}")


def describe_device(device: torch.device) -> str:
    """A short human description: ``cpu (2 threads)`` or ``cuda:0 (NVIDIA H200, 139 GiB)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def module_device(module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU when it has none or is not a module)."""
    if isinstance(module, torch.nn.Module):
        for t in module.parameters():
            return t.device
        for t in module.buffers():
            return t.device
    return torch.device("cpu")


def autocast_for(device: torch.device, *, bf16: bool):
    """bf16 autocast on CUDA when ``bf16`` is set; a no-op context elsewhere (the CPU computes in float32)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def compiles_on(device: torch.device) -> bool:
    """Whether ``compile_models=True`` compiles on ``device``: on CUDA only (on the CPU the compiled sweep was
    at most 1.5x faster after minutes of compilation, see docs/gpu.md)."""
    return device.type == "cuda"


def batch_bucket(rows: int, limit: int) -> int:
    """The batch size ``rows`` is padded to on CUDA: the next power of two (at least 16), at most ``limit``.

    cuDNN's autotuner (and a compiled graph's guards) see a few batch shapes instead of one per chunk length, so
    tail chunks do not pay a fresh autotuning each; padding costs less than twice the rows of a tail chunk.
    """
    bucket = 16
    while bucket < rows:
        bucket *= 2
    return max(rows, min(bucket, limit))


def _mark_batch_dynamic(value) -> None:
    """Mark the first dimension of every tensor in ``value`` (tensors, lists and tuples of them) as dynamic."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 0:
            torch._dynamo.maybe_mark_dynamic(value, 0)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _mark_batch_dynamic(item)


class CompiledOrEager:
    """``fn`` under ``torch.compile`` with a dynamic batch dimension (every other size static), falling back to
    ``fn`` itself, with a warning, when compilation fails on this machine (no compiler, an operator the compiler
    does not take): a missing tool makes the work slower, never stops it. Out-of-memory errors are raised as
    they are."""

    def __init__(self, fn, *, name: str):
        self.fn = fn
        self.name = name
        self.failed: str | None = None
        self._compiled = torch.compile(fn)
        # The blocks of a synthesis network share one code object, so their graphs share one recompile limit:
        # leave room for every block's variants.
        config = torch._dynamo.config
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, name, max(getattr(config, name), 64))

    def __call__(self, *args, **kwargs):
        if self.failed is None:
            try:
                _mark_batch_dynamic(args)
                # Only the batch is dynamic: the blocks of a synthesis network share one code object, and
                # automatic dynamic shapes would take their differing channel counts for dynamism.
                with torch._dynamo.config.patch(automatic_dynamic_shapes=False):
                    return self._compiled(*args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly instead
                self.failed = f"{type(exc).__name__}: {exc}"[:500]
                warnings.warn(
                    f"torch.compile of {self.name} failed ({self.failed}); running it uncompiled",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.fn(*args, **kwargs)
