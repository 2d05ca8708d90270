"""Tasks go to the queue they were declared for: gpu for the engine's heavy work, default for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewapp.celery import app as celery_app
from reviewapp.tasks import job_selftest_task
from reviewapp.tasks.base import job_task
from tests.app.conftest import use_filesystem_broker


@job_task(queue="gpu")
def gpu_probe(job) -> None:
    """A task declared for the gpu queue."""


@pytest.fixture
def empty_broker(tmp_path):
    url = celery_app.conf.broker_url
    options = dict(celery_app.conf.broker_transport_options)
    use_filesystem_broker(tmp_path / "broker")
    yield Path(celery_app.conf.broker_transport_options["data_folder_in"])
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options


def queued(folder: Path) -> list[str]:
    """Queue names of the messages waiting in a filesystem broker folder."""
    return sorted(path.name.split(".", 1)[1].removesuffix(".msg") for path in folder.iterdir())


def test_a_gpu_task_lands_in_the_gpu_queue_only(empty_broker):
    gpu_probe.apply_async(args=[1])

    assert queued(empty_broker) == ["gpu"]


def test_other_tasks_land_in_the_default_queue(empty_broker):
    job_selftest_task.apply_async(args=[1])

    assert queued(empty_broker) == ["default"]
