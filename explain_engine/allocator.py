"""Keep freed CPU memory in the process during long runs of equal-sized batches.

glibc hands every allocation above its mmap threshold straight to the kernel and returns it on free, and trims
the heap's top whenever enough is free. A sweep allocates and frees the same activation buffers thousands of
times, so each pass pays for fresh zeroed pages: on the demo models half of an exact sweep's CPU time was system
time. ``keep_freed_memory()`` raises the mmap threshold to its maximum (32 MiB on 64-bit glibc) and turns heap
trimming off, so freed buffers are reused. The process keeps its peak memory until it exits. It is a no-op where
the C library has no ``mallopt`` (macOS, musl) and when ``EXPLAIN_ENGINE_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: 2 GiB of free heap top before any trimming

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's allocator once per process; True when it was (or already had been) applied."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("EXPLAIN_ENGINE_KEEP_FREED_MEMORY", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
    return _applied
