"""Loading and saving network checkpoints without running code from the file.

Two formats are read:

* **stylegan2-ada-pytorch network pickles** (``.pkl``): a dict with ``G``, ``D``, ``G_ema`` whose objects are
  normally rebuilt by ``torch_utils.persistence`` by *executing Python source embedded in the pickle*. We never do
  that. A restricted unpickler maps the persistence hook to a recorder that keeps each object's class name, init
  kwargs and state; tensors are rebuilt through PyTorch's own tensor-rebuild functions (storages are read with
  ``torch.load(weights_only=True)``); any other global (``os.system``, ``builtins.eval``, ...) is refused.
  The flat state dict is then assembled from the recorded module tree and loaded into our own modules built
  from the recorded init kwargs.
* **our checkpoints** (``.pt``): ``{"format": FORMAT, "version": 1, "networks": {name: {"class", "init_kwargs",
  "state_dict"}}, "metadata": {...}}`` written by ``save_networks`` and read with ``torch.load(weights_only=True)``.

Every failure (not a checkpoint, truncated, asks for code, missing network, wrong shapes) is a ``CheckpointError``
whose message says what is wrong.
"""

from __future__ import annotations

import io
import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import torch
from torch.overrides import TorchFunctionMode

from .autoencoder import ImageAutoencoder
from .files import atomic_torch_save
from .stylegan2 import Discriminator, Generator

FORMAT = "explain-engine-checkpoint"
NETWORK_CLASSES: dict[str, type[torch.nn.Module]] = {
    "Generator": Generator,
    "Discriminator": Discriminator,
    "ImageAutoencoder": ImageAutoencoder,
}


class CheckpointError(Exception):
    """A checkpoint file cannot be used; the message says why."""


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Unsupported global" in line]  # torch names a refused global here
    return (named or lines or [type(exc).__name__])[0][:300]


def file_kind(head: bytes) -> str:
    """What the first bytes of a file look like, for messages about a file that is not a checkpoint."""
    if not head:
        return "an empty file"
    signatures = {
        b"\x89PNG": "a PNG image",
        b"\xff\xd8\xff": "a JPEG image",
        b"GIF8": "a GIF image",
        b"%PDF": "a PDF document",
        b"\x1f\x8b": "a gzip archive",
    }
    for signature, kind in signatures.items():
        if head.startswith(signature):
            return kind
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if text.startswith((b"<?xml", b"<svg")):
        return "an XML or SVG document"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "a text file"


def is_torch_file_head(head: bytes) -> bool:
    """Whether a file starts like a PyTorch file: a zip archive (``torch.save``) or a binary pickle."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


# ---------------------------------------------------------------------------------------------------------------
# Building a network from a file's config without letting the config allocate more than the file's weights


class AllocationBudgetExceeded(Exception):
    """A network being built asked for more tensor elements than its budget."""


_FACTORIES = frozenset(
    {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint}
)


def _requested_elements(func, args: tuple, kwargs: dict) -> int:
    size = kwargs.get("size")
    if size is None:
        if func is torch.full or func is torch.randint:
            size = next((a for a in args if isinstance(a, list | tuple | torch.Size)), ())
        elif args and isinstance(args[0], list | tuple | torch.Size):
            size = args[0]
        else:
            size = [a for a in args if isinstance(a, int)]
    try:
        return math.prod(max(int(s), 0) for s in size)
    except (TypeError, ValueError):
        return 0


class AllocationBudget(TorchFunctionMode):
    """Within the block, tensor factories (``torch.empty``, ``zeros``, ``randn``, ...) may create at most
    ``limit`` elements in all; one more raises ``AllocationBudgetExceeded`` before it is allocated. Used while
    a network is built from init kwargs read from a file, so that a config naming a huge network is refused
    instead of exhausting the memory."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.used = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES:
            self.used += _requested_elements(func, args, kwargs)
            if self.used > self.limit:
                raise AllocationBudgetExceeded(f"over {self.limit:,} tensor elements")
        return func(*args, **kwargs)


def construction_budget(state_dict: dict) -> int:
    """Tensor elements a network may create while it is built: twice its weights in the file, plus slack for
    buffers that are not saved."""
    held = sum(int(v.numel()) for v in state_dict.values() if isinstance(v, torch.Tensor))
    return 2 * held + 4_000_000


# ---------------------------------------------------------------------------------------------------------------
# Restricted unpickling of stylegan2-ada-pytorch pickles


class PersistentObject:
    """What the persistence hook would have rebuilt, recorded without running its embedded source code."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict):
            raise CheckpointError("malformed persistent object in pickle (meta is not a dict)")
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        state = meta.get("state") or {}
        if not isinstance(state, dict):
            raise CheckpointError(f"malformed state for persistent object {self.class_name}")
        self.state = state

    @property
    def init_kwargs(self) -> dict:
        return _plain(self.state.get("_init_kwargs") or {})

    def state_dict(self, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
        """The flat state dict (parameters and persistent buffers) of the recorded module tree."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        non_persistent = set(self.state.get("_non_persistent_buffers_set") or ())
        for key in ("_parameters", "_buffers"):
            for name, value in (self.state.get(key) or {}).items():
                if value is None or (key == "_buffers" and name in non_persistent):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise CheckpointError(f"{prefix}{name} is not a tensor")
                out[prefix + name] = value.detach()
        for name, child in (self.state.get("_modules") or {}).items():
            if child is None:
                continue
            if not isinstance(child, PersistentObject):
                raise CheckpointError(f"sub-module {prefix}{name} is not a network module")
            out.update(child.state_dict(prefix + name + "."))
        return out

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"


class _AttrDict(dict):
    """Stand-in for dnnlib.EasyDict: a plain dict that also accepts attribute-style state."""

    def __setstate__(self, state):
        self.update(state or {})


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, torch.Tensor):  # numpy scalars
        return obj.item()
    return obj


def _load_storage_from_bytes(data: bytes):
    # torch pickles a storage as the bytes of a torch.save() of it; read those bytes without unpickling code.
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means the storage is not usable
        raise CheckpointError(f"a tensor storage in the pickle could not be read safely: {exc}") from None


def _latin1_bytes(text, encoding="latin1"):
    # Pickle protocol 2 writes bytes as _codecs.encode(str, "latin1"); nothing else is accepted.
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError("the pickle asks for _codecs.encode with unexpected arguments")
    return text.encode("latin1")


def _numpy_scalar(dtype, data=None):
    import numpy as np

    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _numpy_dtype(name, *args):
    import numpy as np

    return np.dtype(name)


def _safe_globals() -> dict[tuple[str, str], Any]:
    import numpy as np
    import torch._utils as tu

    table: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
        ("collections", "OrderedDict"): OrderedDict,
        ("dnnlib.util", "EasyDict"): _AttrDict,
        ("dnnlib", "EasyDict"): _AttrDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "set"): set,  # protocol 2 names builtins the Python 2 way
        ("__builtin__", "frozenset"): frozenset,
        ("torch._utils", "_rebuild_tensor_v2"): tu._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): tu._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): tu._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("torch", "Size"): torch.Size,
        ("_codecs", "encode"): _latin1_bytes,
    }
    for name in ("_rebuild_parameter_with_state",):
        if hasattr(tu, name):
            table[("torch._utils", name)] = getattr(tu, name)
    table[("torch._tensor", "_rebuild_from_type_v2")] = _rebuild_from_type_v2
    _ = np
    return table


def _rebuild_from_type_v2(func, new_type, args, state):
    # Only plain tensors and parameters are accepted as the rebuilt type.
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise CheckpointError(f"refused tensor subclass {new_type!r} in pickle")
    ret = func(*args)
    if type(ret) is not new_type:
        ret = ret.as_subclass(new_type)
    return ret


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self._table = _safe_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._table[(module, name)]
        except KeyError:
            if module == "torch" and name.endswith("Storage"):
                return getattr(torch, name)  # legacy typed-storage classes: data holders only
            if module == "torch" and name in ("float32", "float16", "float64", "int64", "uint8", "bool"):
                return getattr(torch, name)
            raise CheckpointError(
                f"the pickle asks for {module}.{name}, which is not allowed: network pickles are read without "
                f"running any code they contain"
            ) from None

    def persistent_load(self, pid):
        raise CheckpointError("the pickle uses persistent ids (is it a torch.save file? use a .pt loader)")


def read_network_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a stylegan2-ada-pytorch network pickle safely: ``{"G": PersistentObject, "D": ..., "G_ema": ...}``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except RecursionError:
        raise CheckpointError(f"{path.name} is not a readable network pickle (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle can raise almost any error while it is read
        raise CheckpointError(
            f"{path.name} is not a readable network pickle (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name}: expected a dict of networks, found {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------------------------------------------
# Our own checkpoint format


def network_record(net: torch.nn.Module) -> dict:
    """A network as a plain record: class name, init kwargs and a float32 CPU state dict."""
    cls = type(net).__name__
    init_kwargs = getattr(net, "init_kwargs", None)
    if init_kwargs is None:
        raise ValueError(f"{cls} has no init_kwargs; cannot record how to rebuild it")
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return {"class": cls, "init_kwargs": init_kwargs, "state_dict": state}


def save_networks(
    path: str | os.PathLike, networks: dict[str, torch.nn.Module | dict], *, metadata: dict | None = None
) -> Path:
    """Write networks (``{"G_ema": G, "D": D}``, modules or records) to our ``.pt`` format, atomically."""
    path = Path(path)
    records = {
        name: (net if isinstance(net, dict) else network_record(net)) for name, net in networks.items()
    }
    atomic_torch_save({"format": FORMAT, "version": 1, "networks": records, "metadata": metadata or {}}, path)
    return path


def _read_pt(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises almost any error for a file that is not its own
        msg = _first_line(exc)
        raise CheckpointError(
            f"{path.name} is not a readable checkpoint (truncated, corrupt, or it asks to run code): {msg}"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("networks"), dict)
    ):
        raise CheckpointError(
            f"{path.name} is a PyTorch file but not a network checkpoint of this tool "
            f"(expected a dict with format={FORMAT!r} and 'networks')"
        )
    return data


def read_checkpoint(path: str | os.PathLike) -> dict[str, dict]:
    """Read either format into ``{name: {"class", "init_kwargs", "state_dict"}}``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"{path.name} is empty")
    if not is_torch_file_head(head):
        raise CheckpointError(
            f"{path.name} is {file_kind(head)}, neither a network pickle nor a PyTorch checkpoint"
        )
    if head[:2] == b"PK":  # torch.save zip container
        return _read_pt(path)["networks"]
    if head[:1] == b"\x80":  # a raw pickle
        data = read_network_pickle(path)
        out = {}
        for name, obj in data.items():
            if isinstance(obj, PersistentObject):
                try:
                    out[str(name)] = {
                        "class": obj.class_name,
                        "init_kwargs": obj.init_kwargs,
                        "state_dict": obj.state_dict(),
                    }
                except CheckpointError as exc:
                    raise CheckpointError(f"{path.name}: network {name}: {exc}") from None
                except Exception as exc:  # noqa: BLE001 - an object the pickle built without its state
                    raise CheckpointError(
                        f"{path.name}: network {name} is malformed: {_first_line(exc)}"
                    ) from None
        return out
    raise CheckpointError(f"{path.name} is neither a network pickle nor a PyTorch checkpoint")


def _build(record: dict, name: str, path: Path) -> torch.nn.Module:
    if not isinstance(record, dict):
        raise CheckpointError(f"{path.name}: network {name} is not a network record")
    class_name = record.get("class")
    cls = NETWORK_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise CheckpointError(f"{path.name}: network {name} has unsupported class {str(class_name)[:100]!r}")
    kwargs = record.get("init_kwargs") or {}
    state_dict = record.get("state_dict")
    if not isinstance(kwargs, dict) or not isinstance(state_dict, dict):
        raise CheckpointError(f"{path.name}: network {name} lacks its init kwargs or its state dict")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise CheckpointError(f"{path.name}: the state dict of {name} holds entries that are not tensors")
    budget = construction_budget(state_dict)
    try:
        with AllocationBudget(budget):
            net = cls(**{str(k): v for k, v in kwargs.items()})
    except AllocationBudgetExceeded as exc:
        raise CheckpointError(
            f"{path.name}: the init kwargs of {name} describe a network larger than the weights the file "
            f"holds ({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - init kwargs of any type and value come from the file
        raise CheckpointError(
            f"{path.name}: cannot build {record['class']} from its init kwargs: {_first_line(exc)}"
        ) from None
    try:
        net.load_state_dict(state_dict, strict=True)
    except Exception as exc:  # noqa: BLE001 - missing or unexpected keys, wrong shapes or dtypes
        raise CheckpointError(
            f"{path.name}: the weights of {name} do not fit a {record['class']} built from "
            f"its own config: {str(exc).splitlines()[0]}"
        ) from None
    return net.eval().requires_grad_(False)


def load_network(
    path: str | os.PathLike, names: tuple[str, ...], *, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The first of ``names`` found in the checkpoint ``path``, in eval mode, without gradients, on ``device``."""
    path = Path(path)
    networks = read_checkpoint(path)
    for name in names:
        if name in networks:
            return _build(networks[name], name, path).to(torch.device(device))
    raise CheckpointError(
        f"{path.name} has no network named any of {list(names)} (it has {sorted(networks)})"
    )


def load_generator(
    path: str | os.PathLike, *, prefer_ema: bool = True, device: str | torch.device = "cpu"
) -> Generator:
    """The generator of a checkpoint (``G_ema`` when present, else ``G``), in eval mode, without gradients, on
    ``device`` (default the CPU)."""
    names = ("G_ema", "G") if prefer_ema else ("G", "G_ema")
    return cast(Generator, load_network(path, names, device=device))


def load_discriminator(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Discriminator:
    """The discriminator ``D`` of a checkpoint, in eval mode, without gradients, on ``device`` (default the
    CPU)."""
    return cast(Discriminator, load_network(path, ("D",), device=device))


def load_autoencoder(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> ImageAutoencoder:
    """The autoencoder ``AE`` of a checkpoint (Latent Shift's latent space), in eval mode, without gradients, on
    ``device`` (default the CPU)."""
    if not Path(path).exists():
        raise CheckpointError(
            f"autoencoder checkpoint not found: {path} (place the file there, or train one with "
            "`python -m explain_engine train-autoencoder --out PATH`)"
        )
    net = load_network(path, ("AE",), device=device)
    if not isinstance(net, ImageAutoencoder):
        raise CheckpointError(f"{Path(path).name}: network AE is a {type(net).__name__}, not an autoencoder")
    return net


def checkpoint_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` dict of one of our ``.pt`` checkpoints ({} for network pickles)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK":
        return {}
    meta = _read_pt(path).get("metadata")
    return meta if isinstance(meta, dict) else {}
