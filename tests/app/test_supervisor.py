"""The demo supervisor stops everything it started, grandchildren included, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each child forks a grandchild that would outlive it if only the child were stopped.
SUPERVISED = """
import sys
from reviewapp.supervisor import supervise
forker = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
sys.exit(supervise({"a": [sys.executable, "-c", forker], "b": [sys.executable, "-c", forker]}, grace_s=5))
"""


def descendants(pid: int) -> set[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = {int(child) for child in children}
    for child in list(found):
        found |= descendants(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def start_supervised() -> tuple[subprocess.Popen, set[int]]:
    process = subprocess.Popen([sys.executable, "-c", SUPERVISED], cwd=REPO_ROOT, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(tree := descendants(process.pid)) < 4:
        assert time.monotonic() < deadline, "the supervised processes did not start"
        time.sleep(0.1)
    return process, tree


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_stops_every_process(signum):
    process, tree = start_supervised()

    process.send_signal(signum)

    assert process.wait(timeout=20) == 0
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in tree if alive(pid)]


@pytest.mark.timeout(60)
def test_the_death_of_one_child_stops_the_others():
    process, tree = start_supervised()
    first_child = min(
        int(pid)
        for pid in subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
    )

    os.kill(first_child, signal.SIGKILL)

    assert process.wait(timeout=20) == 1
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in tree if alive(pid)]
