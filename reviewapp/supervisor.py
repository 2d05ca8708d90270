"""Run a few long-lived processes together and stop them all together (the demo's web server and worker).

Each child leads its own process group and is told by the kernel to terminate if the supervisor itself
dies. SIGINT, SIGTERM or SIGHUP send SIGTERM to each child (Celery then shuts its pool down in order); once
the children have exited, or after a grace period, or on a second signal, each whole group gets SIGKILL,
so nothing they forked outlives them. The death of one child stops the others.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def terminate_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the supervisor dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def supervise(commands: Mapping[str, Sequence[str]], *, grace_s: float = 20.0) -> int:
    """Start ``commands`` (name -> argv) and wait; return 0 after a stop signal, 1 when a child died first."""
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            children[name] = subprocess.Popen(list(argv), process_group=0, preexec_fn=terminate_with_parent)
        died = _wait_for_stop(children, received)
        if died:
            print(f"\n{died} exited with status {children[died].returncode}; stopping the rest.", flush=True)
        else:
            print("\nStopping (Ctrl-C again to stop at once) ...", flush=True)
        _stop(children, received, grace_s=grace_s)
        return 1 if died else 0
    finally:
        for pid in (child.pid for child in children.values()):
            _signal_group(pid, signal.SIGKILL)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_for_stop(children: Mapping[str, subprocess.Popen], received: list[int]) -> str | None:
    """Block until a stop signal arrives (None) or a child exits (its name)."""
    while not received:
        for name, child in children.items():
            if child.poll() is not None:
                return name
        time.sleep(0.2)
    return None


def _stop(children: Mapping[str, subprocess.Popen], received: list[int], *, grace_s: float) -> None:
    signals_before = len(received)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(child.poll() is None for child in children.values()):
        if time.monotonic() > deadline or len(received) > signals_before:
            print("Killing what is left.", flush=True)
            break
        time.sleep(0.1)
    for child in children.values():
        _signal_group(child.pid, signal.SIGKILL)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print(f"Process {child.pid} did not exit.", file=sys.stderr, flush=True)
