"""Reachability of what the product needs: the database, the broker and at least one Celery worker, and the
device each of them runs the engine on (``ENGINE_DEVICE``)."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field

from django.db import connection

from reviewapp.bridge.models import engine_device_description
from reviewapp.celery import app

logger = logging.getLogger(__name__)

WORKER_PING_TIMEOUT_S = 2.0
#: The worker control command that answers with the worker's engine device (declared in reviewapp.tasks.system).
ENGINE_DEVICE_COMMAND = "engine_device"


@dataclass(frozen=True)
class Health:
    database: bool
    broker: bool
    worker: bool
    #: This (web) process's engine device, e.g. ``cpu (1 threads)`` or ``cuda:0 (NVIDIA H200, 139 GiB)``.
    device: str = ""
    #: The engine device of the worker that answered, by worker name.
    worker_devices: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.database and self.broker and self.worker

    def as_dict(self) -> dict[str, bool | str | dict[str, str]]:
        return asdict(self)


def database_is_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("Health check: the database is unreachable.")
        return False


def broker_is_up() -> bool:
    """A connection to the broker opens (for the filesystem transport: its folders are writable)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=3)
            if conn.transport_cls == "filesystem":
                options = conn.transport_options
                folders = [options["data_folder_out"], options["control_folder"]]
                return all(os.path.isdir(folder) and os.access(folder, os.W_OK) for folder in folders)
            return True
    except Exception:
        logger.exception("Health check: the broker is unreachable.")
        return False


def worker_is_up(*, timeout_s: float = WORKER_PING_TIMEOUT_S) -> bool:
    """Some worker answers a broadcast control ping within ``timeout_s`` seconds.

    The reply goes through the broker, so this also proves that workers consume from it. A worker with the
    solo pool answers only between tasks; the prefork pool (the default) answers while busy.
    """
    try:
        # A fresh connection rather than the pool: a pooled one may outlive a broker restart.
        with app.connection_for_write() as conn:
            return bool(app.control.ping(timeout=timeout_s, limit=1, connection=conn))
    except Exception:
        logger.exception("Health check: pinging the workers failed.")
        return False


def worker_devices(*, timeout_s: float = WORKER_PING_TIMEOUT_S) -> dict[str, str]:
    """The engine device of the first worker that answers within ``timeout_s`` seconds, by worker name."""
    try:
        with app.connection_for_write() as conn:
            replies = app.control.broadcast(
                ENGINE_DEVICE_COMMAND, reply=True, timeout=timeout_s, limit=1, connection=conn
            )
    except Exception:
        logger.exception("Health check: asking the workers for their device failed.")
        return {}
    devices = {}
    for reply in replies or []:
        for name, answer in reply.items():
            if isinstance(answer, dict) and "device" in answer:
                devices[name] = str(answer["device"])
    return devices


def process_device() -> str:
    try:
        return engine_device_description()
    except Exception as error:  # a bad ENGINE_DEVICE is reported here rather than failing the check
        return f"error: {error}"


def health_check() -> Health:
    database = database_is_up()
    broker = broker_is_up()
    worker = broker and worker_is_up()
    return Health(
        database=database,
        broker=broker,
        worker=worker,
        device=process_device(),
        worker_devices=worker_devices() if worker else {},
    )
