"""A real Celery worker process for integration tests.

    with running_worker() as worker:
        job_enqueue(job=job, task=job_selftest_task)
        ...

The worker gets the database and broker this test process uses (inside a test session: the test database,
which must be committed data, so tests use ``transactional_db``; and the session's broker folder), runs the
solo pool on every queue and is stopped (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from reviewapp.celery import app as celery_app
from reviewapp.config import database_url
from reviewapp.supervisor import terminate_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    hostname: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, timeout_s: float = 20.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the whole process group after ``timeout_s``."""
        if self.is_alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def broker_url_of_this_process() -> str:
    """``CELERY_BROKER_URL`` for a process that should share this process's broker."""
    url = celery_app.conf.broker_url
    if url.startswith("filesystem://"):
        folder = Path(celery_app.conf.broker_transport_options["data_folder_in"]).parent
        return f"filesystem://{folder}"
    return url


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker that shares this process's database, broker, media and secret."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker_url_of_this_process(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "SECRET_KEY": settings.SECRET_KEY,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def wait_until_answers_ping(worker: WorkerProcess, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.is_alive():
            raise RuntimeError(f"The worker exited with status {worker.process.returncode}:\n{worker.log()}")
        with celery_app.connection_for_write() as conn:
            if celery_app.control.ping(destination=[worker.hostname], timeout=0.5, connection=conn):
                return
    raise TimeoutError(f"The worker did not answer a ping within {timeout_s} s:\n{worker.log()}")


@contextmanager
def running_worker(
    *,
    env: Mapping[str, str] | None = None,
    queues: tuple[str, ...] = ("default", "gpu", "interactive"),
    pool: str = "solo",
    ready_timeout_s: float = 90.0,
) -> Iterator[WorkerProcess]:
    """Start ``celery worker`` in a subprocess, wait until it answers a ping, stop it on exit."""
    hostname = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_file = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    command = [
        sys.executable, "-m", "celery", "-A", "reviewapp", "worker",
        "--pool", pool, "--queues", ",".join(queues), "--hostname", hostname,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=dict(env) if env is not None else worker_env(),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        process_group=0,
        # If the test process is killed, its finally blocks never run; the kernel still stops the worker.
        preexec_fn=terminate_with_parent,
    )
    worker = WorkerProcess(hostname=hostname, process=process, log_path=Path(log_file.name))
    try:
        wait_until_answers_ping(worker, timeout_s=ready_timeout_s)
        yield worker
    finally:
        worker.stop()
        log_file.close()
        os.unlink(log_file.name)
