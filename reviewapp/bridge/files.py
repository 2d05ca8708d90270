"""Files under MEDIA_ROOT: paths, atomic writes, hashes, PNG bytes and the facts of stored arrays."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image


def media_path(name: str) -> Path:
    """The absolute path of a file name stored in a row (relative to MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / name


def resolve_path(path: str) -> Path:
    """A study's file: absolute paths are files on the server, others are relative to MEDIA_ROOT."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else media_path(path)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: str | os.PathLike, data: bytes | Sequence[bytes]) -> Path:
    """Write ``data`` (bytes or chunks of bytes) to ``path`` atomically: a temporary file in the same folder,
    renamed into place, so a reader never sees a half-written file. Creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = [data] if isinstance(data, bytes | bytearray) else data
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as handle:
        try:
            for chunk in chunks:
                handle.write(chunk)
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)
    return path


def write_media(name: str, data: bytes | Sequence[bytes]) -> str:
    """Write ``data`` to MEDIA_ROOT/``name`` atomically; returns ``name``."""
    write_atomic(media_path(name), data)
    return name


def delete_media(names: Sequence[str]) -> None:
    """Remove stored files (used to undo the files of an import that failed)."""
    for name in names:
        if name:
            media_path(name).unlink(missing_ok=True)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_facts(name: str) -> dict[str, Any]:
    """Shape, dtype and SHA-256 of a stored ``.npy`` file, for the row that points at it."""
    array = np.load(media_path(name), mmap_mode="r")
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": file_sha256(media_path(name))}
