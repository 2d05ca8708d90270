"""The allocator tuning of long CPU runs: applied once, and switched off by the environment."""

import ctypes.util
import sys

import pytest

from explain_engine import allocator


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_applies_once_on_glibc(monkeypatch):
    calls = []
    real_cdll = allocator.ctypes.CDLL

    def recording_cdll(name):
        lib = real_cdll(name)
        calls.append(name)
        return lib

    monkeypatch.setattr(allocator.ctypes, "CDLL", recording_cdll)
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True
    assert len(calls) == 1  # the second call reuses the first answer
    assert calls[0] == (ctypes.util.find_library("c") or "libc.so.6")


def test_the_environment_switches_it_off(monkeypatch):
    monkeypatch.setenv("EXPLAIN_ENGINE_KEEP_FREED_MEMORY", "0")
    assert allocator.keep_freed_memory() is False


def test_a_c_library_without_mallopt_is_a_no_op(monkeypatch):
    class NoMallopt:
        def __init__(self, name):
            pass

    monkeypatch.setattr(allocator.ctypes, "CDLL", NoMallopt)
    assert allocator.keep_freed_memory() is False
