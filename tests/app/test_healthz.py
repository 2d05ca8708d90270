"""/healthz reports whether the database, the broker and a worker are reachable, and their engine devices."""

from __future__ import annotations

import pytest

from reviewapp.celery import app as celery_app
from tests.app.conftest import use_filesystem_broker


@pytest.fixture
def restore_broker():
    url = celery_app.conf.broker_url
    options = dict(celery_app.conf.broker_transport_options)
    yield
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options


@pytest.mark.timeout(120)
def test_it_answers_200_when_everything_is_up(client, transactional_db, celery_worker):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    device, worker_devices = body.pop("device"), body.pop("worker_devices")
    assert body == {"status": "ok", "database": True, "broker": True, "worker": True}
    # No GPU here: ENGINE_DEVICE "auto" is the CPU, in this process and in the worker that answered.
    assert device.startswith("cpu")
    assert len(worker_devices) == 1
    assert next(iter(worker_devices.values())).startswith("cpu")


@pytest.mark.django_db
def test_it_answers_503_when_no_worker_listens(client, tmp_path, restore_broker):
    use_filesystem_broker(tmp_path / "broker-without-workers")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body.pop("device").startswith("cpu")
    assert body == {
        "status": "unavailable",
        "database": True,
        "broker": True,
        "worker": False,
        "worker_devices": {},
    }


@pytest.mark.django_db
def test_it_answers_503_when_the_broker_is_down(client, restore_broker):
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    celery_app.conf.broker_transport_options = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body.pop("device").startswith("cpu")
    assert body == {
        "status": "unavailable",
        "database": True,
        "broker": False,
        "worker": False,
        "worker_devices": {},
    }


def test_it_answers_503_when_the_database_is_unreachable(client):
    # Without the django_db mark the test runner refuses every query, as an unreachable database would.
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] is False


@pytest.mark.django_db
def test_it_needs_no_log_in_and_rejects_post(client, tmp_path, restore_broker):
    use_filesystem_broker(tmp_path / "broker")

    assert client.post("/healthz").status_code == 405
