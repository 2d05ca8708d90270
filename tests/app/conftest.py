"""Fixtures shared by the whole suite: people by role, an isolated broker, a real worker."""

from __future__ import annotations

from collections.abc import Iterator

import kombu.pools
import pytest
from django.test import Client

from reviewapp.celery import app as celery_app
from reviewapp.config import FILESYSTEM_BROKER_URL, filesystem_transport_options
from tests.helpers.worker import WorkerProcess, running_worker

PASSWORD = "correct horse battery staple"


def use_filesystem_broker(folder) -> None:
    """Point this process's Celery app at a filesystem broker rooted at ``folder``."""
    celery_app.conf.broker_url = FILESYSTEM_BROKER_URL
    celery_app.conf.broker_transport_options = filesystem_transport_options(folder)
    drop_broker_connections()


def drop_broker_connections() -> None:
    """Forget every broker connection and producer of this process (after the broker settings changed).

    kombu keeps its connection and producer pools in process-wide groups keyed by the broker's URL: closing
    the app's pool alone would leave a closed pool there for the next user of the same URL to acquire from.
    """
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture(scope="session", autouse=True)
def _broker_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The default filesystem broker moves to a folder of this session, away from a running demo's."""
    if celery_app.conf.broker_url.startswith("filesystem://"):
        use_filesystem_broker(tmp_path_factory.mktemp("broker"))


@pytest.fixture(scope="session", autouse=True)
def _media_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Stored files go to a folder of this session (workers started by the session inherit it)."""
    from django.conf import settings

    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """(generator + discriminator checkpoint, TorchScript classifier) of a 16x16 study."""
    from tests.helpers.studies import tiny_model_files

    return tiny_model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_lab_models(tmp_path_factory: pytest.TempPathFactory):
    """(generator + discriminator checkpoint, demo-architecture classifier) of a 16x16 study whose classifier
    has named blocks and a loss estimator, as the lab's Grad-CAM and DIP need."""
    from tests.helpers.studies import tiny_lab_model_files

    return tiny_lab_model_files(tmp_path_factory.mktemp("lab-models"))


@pytest.fixture
def lab_study(alice, tiny_lab_models):
    """A registered 16x16 study with its style ranges and a classifier every lab method can use."""
    from tests.helpers.studies import study_with_ranges

    return study_with_ranges(created_by=alice, models=tiny_lab_models, name="Lab study")


@pytest.fixture
def tiny_study(alice, tiny_models):
    """A registered 16x16 study with its style ranges, ready for cases."""
    from tests.helpers.studies import study_with_ranges

    return study_with_ranges(created_by=alice, models=tiny_models)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An SQLite test database is a file, not memory, so that worker processes can open it too."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker) -> Iterator[WorkerProcess]:
    """One real worker for the session, on this session's database and broker (solo pool, every queue).

    It sees only committed rows: tests that use it need ``transactional_db``.
    """
    with running_worker() as worker:
        yield worker


@pytest.fixture
def alice(db):
    """Alice the admin."""
    from reviewapp.services.users import user_create

    return user_create(username="alice", email="alice@example.org", password=PASSWORD, role="admin")


@pytest.fixture
def bob(db):
    """Bob the reviewer."""
    from reviewapp.services.users import user_create

    return user_create(username="bob", email="bob@example.org", password=PASSWORD, role="reviewer")


@pytest.fixture
def charlie(db):
    """Charlie, another reviewer."""
    from reviewapp.services.users import user_create

    return user_create(username="charlie", email="charlie@example.org", password=PASSWORD, role="reviewer")


@pytest.fixture
def media_root(settings, tmp_path):
    """Stored files of this test go to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def charlie_client(charlie) -> Client:
    client = Client()
    client.force_login(charlie)
    return client


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty cache: log-in failures of one test never lock out another."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sent(monkeypatch):
    """The tasks the projections and the sweep send, recorded instead of sent, so that no worker of the
    session runs them during the test (the test runs them itself or writes their results)."""
    calls = []

    def record(*, job, task, kwargs=None):
        calls.append((job.pk, task))
        return ""

    for module in ("projections", "studies", "sweeps"):
        monkeypatch.setattr(f"reviewapp.services.{module}.job_enqueue", record)
    return calls


@pytest.fixture
def running_sweep(transactional_db, sent, tiny_study, alice):
    """A sweep of 5 projected cases (3 units) with one unit done in 10 s: 40 perturbed images per second."""
    from datetime import timedelta

    from django.utils import timezone

    from reviewapp.models import Job, Projection, SweepUnit
    from reviewapp.services.cases import case_import_files
    from reviewapp.services.jobs import job_start
    from reviewapp.services.sweeps import sweep_launch, sweep_unit_claim, sweep_unit_finish
    from reviewapp.tasks import projection_run_task, sweep_prepare_task
    from tests.helpers.studies import tiny_case_files

    case_import_files(study=tiny_study, files=tiny_case_files(5), created_by=alice)
    for job in Job.objects.filter(kind="projection"):
        projection_run_task(
            job.pk, projection_pks=list(Projection.objects.filter(job=job).values_list("pk", flat=True))
        )
    sweep = sweep_launch(study=tiny_study, created_by=alice)
    sweep_prepare_task(sweep.job_id, sweep_pk=sweep.pk)
    sweep.refresh_from_db()
    job_start(job=sweep.job)
    unit = sweep_unit_claim(sweep=sweep, task_id="part-a")
    sweep_unit_finish(unit=unit, job=sweep.job, seconds=10.0, perturbations=400)
    started = timezone.now() - timedelta(seconds=30)
    SweepUnit.objects.filter(pk=unit.pk).update(
        started_at=started, finished_at=started + timedelta(seconds=10)
    )
    Job.objects.filter(pk=sweep.job_id).update(started_at=started - timedelta(seconds=5))
    sweep.refresh_from_db()
    return sweep
