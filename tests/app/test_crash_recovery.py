"""A worker killed with SIGKILL in the middle of a projection batch, a sweep or a lab run loses nothing.

Real worker processes on the broker of this session (the filesystem transport by default; Redis and
PostgreSQL through ``test_crash_recovery_over_redis_with_postgresql``), with short leases. After the kill the
Job row stays "running" (its work is waiting to be redone), the lease of the dead task is reclaimed once it
expires, a restarted worker redoes the work, and the result equals that of a run nobody interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.celery import app as celery_app
from reviewapp.models import Annotation, Job, JobLease, LabRun, Projection, Sweep, SweepUnit
from reviewapp.services.cases import case_import_files
from reviewapp.services.lab import lab_run_create
from reviewapp.services.projections import projection_queue
from reviewapp.services.sweeps import sweep_launch
from tests.app.conftest import drop_broker_connections, use_filesystem_broker
from tests.helpers.reviews import review_set_with_items
from tests.helpers.services import POSTGRES_URL, postgres_url, redis_url
from tests.helpers.studies import FAST_LAB_PARAMETERS, projected_cases, study_with_ranges, tiny_case_files
from tests.helpers.worker import WorkerProcess, running_worker, worker_env

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Lease times of the workers and of this process: a lost worker is noticed within a few seconds.
HEARTBEAT_S, LEASE_S, REAP_S = 0.5, 4.0, 1.0


@pytest.fixture(autouse=True)
def short_leases(settings) -> None:
    settings.JOB_HEARTBEAT_SECONDS = HEARTBEAT_S
    settings.JOB_LEASE_SECONDS = LEASE_S
    settings.JOB_REAP_INTERVAL_SECONDS = REAP_S
    settings.JOB_MAX_ATTEMPTS = 3


@pytest.fixture(scope="module", autouse=True)
def broker_of_this_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A broker no other worker of the session reads (the session's worker would take the messages)."""
    url = celery_app.conf.broker_url
    options = dict(celery_app.conf.broker_transport_options)
    extra_env: dict[str, str] = {}
    if url.startswith("filesystem://"):
        use_filesystem_broker(tmp_path_factory.mktemp("crash-broker"))
    else:
        prefix = f"{options.get('global_keyprefix', '')}crash-{uuid.uuid4().hex[:8]}:"
        celery_app.conf.broker_transport_options = {**options, "global_keyprefix": prefix}
        drop_broker_connections()
        extra_env["CELERY_BROKER_KEY_PREFIX"] = prefix
    yield extra_env
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options
    drop_broker_connections()


@pytest.fixture
def start_worker(broker_of_this_module):
    """``start_worker()``: a context manager running a worker with short leases on this module's broker."""

    def start():
        env = worker_env(
            JOB_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
            JOB_LEASE_SECONDS=str(LEASE_S),
            JOB_REAP_INTERVAL_SECONDS=str(REAP_S),
            **broker_of_this_module,
        )
        return running_worker(env=env)

    return start


def kill(worker: WorkerProcess) -> None:
    """SIGKILL: no warm shutdown, no acknowledgement, no chance to give anything back."""
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)


def wait_for(condition: Callable[[], object], *, timeout_s: float, log: Callable[[], str], every_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"Timed out after {timeout_s} s. Worker log:\n{log()[-4000:]}")


def job_of(pk: int) -> Job:
    return Job.objects.get(pk=pk)


class ProgressWatcher:
    """Polls a job's progress endpoint as the page does, and keeps every answer."""

    def __init__(self, client: Client, job_pk: int) -> None:
        self.client = client
        self.url = reverse("job-progress", args=[job_pk])
        self.seen: list[dict] = []

    def finished(self) -> bool:
        payload = self.client.get(self.url).json()
        self.seen.append(payload)
        return payload["finished"]

    def reclaimed(self) -> bool:
        """Polls until the job says its lost work was sent again (within the lease time and a margin)."""
        wait_for(
            lambda: not self.finished() and "worker was lost" in self.seen[-1]["message"],
            timeout_s=LEASE_S + 15,
            log=lambda: str(self.seen[-5:]),
        )
        return True

    def statuses(self) -> set[str]:
        return {payload["status"] for payload in self.seen}


def assert_reclaimed_once(job: Job) -> None:
    """The dead task's lease was reclaimed and its work redone under exactly one new lease."""
    lost = list(JobLease.objects.filter(job=job, state=JobLease.State.LOST))
    assert len(lost) == 1, list(JobLease.objects.filter(job=job).values())
    redo = JobLease.objects.get(job=job, task_name=lost[0].task_name, attempt=2)
    assert redo.state == JobLease.State.DONE
    assert not JobLease.objects.filter(job=job, state__in=[JobLease.State.RUNNING, JobLease.State.QUEUED])


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_projection_batch_whose_worker_is_killed_is_redone_with_the_same_result(
    transactional_db, start_worker, alice, alice_client, tiny_models
):
    study = study_with_ranges(
        created_by=alice, models=tiny_models, projection_steps=100, projection_batch_size=4
    )
    with start_worker() as first:
        case_import_files(study=study, files=tiny_case_files(2), created_by=alice)
        job = Job.objects.get(kind="projection")
        wait_for(lambda: job_of(job.pk).progress >= 0.2, timeout_s=120, log=first.log, every_s=0.05)
        kill(first)
    killed_at = job_of(job.pk)
    assert killed_at.status == Job.Status.RUNNING  # work left to do, not "failed", not "succeeded"
    assert 0.2 <= killed_at.progress < 1.0

    watcher = ProgressWatcher(alice_client, job.pk)
    watcher.reclaimed()  # by the page's poll, with no worker up
    with start_worker() as second:
        wait_for(watcher.finished, timeout_s=180, log=second.log)
        job = job_of(job.pk)
        assert job.status == Job.Status.SUCCEEDED, (job.error, second.log()[-3000:])
        assert watcher.statuses() <= {"running", "succeeded"}
        assert_reclaimed_once(job)
        redone = {p.case_id: p for p in Projection.objects.filter(job=job)}
        assert all(p.status == Projection.Status.SUCCEEDED for p in redone.values())

        # The same cases again, with nobody interrupting: the same style vectors, bit for bit.
        (reference_job,) = projection_queue(cases=[p.case for p in redone.values()], created_by=alice)
        wait_for(lambda: job_of(reference_job.pk).is_finished, timeout_s=180, log=second.log)
    reference = {p.case_id: p for p in Projection.objects.filter(job=reference_job)}
    assert {case: p.styles_sha256 for case, p in redone.items()} == {
        case: p.styles_sha256 for case, p in reference.items()
    }
    assert not Projection.objects.exclude(status=Projection.Status.SUCCEEDED).exists()


@pytest.fixture
def sweep_study(alice, tiny_models, settings):
    """A projected study whose sweeps have many small units, so that a kill lands in the middle."""
    settings.SWEEP_IMAGE_CHUNK = 1
    settings.SWEEP_DIM_CHUNK = 32
    settings.SWEEP_GALLERIES_AT_FINISH = 1
    study = study_with_ranges(created_by=alice, models=tiny_models, projection_steps=5)
    cases = projected_cases(study, count=2, created_by=alice)
    return study, cases


def effects_of(sweep: Sweep) -> list[tuple]:
    return list(
        sweep.dimension_effects.order_by("dim").values_list("dim", "rank", "effect", "direction", "selected")
    )


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_sweep_whose_worker_is_killed_finishes_with_every_unit_done_once(
    transactional_db, start_worker, alice, alice_client, sweep_study
):
    study, cases = sweep_study
    with start_worker() as first:
        sweep = sweep_launch(study=study, cases=cases, created_by=alice, delta=0.01)
        units = lambda: SweepUnit.objects.filter(sweep=sweep)  # noqa: E731
        wait_for(lambda: units().count() > 4, timeout_s=120, log=first.log)
        total = units().count()
        wait_for(
            lambda: units().filter(status=SweepUnit.Status.DONE).count() >= 0.35 * total,
            timeout_s=120,
            log=first.log,
            every_s=0.02,
        )
        kill(first)
    held = list(units().filter(status=SweepUnit.Status.RUNNING).values_list("index", flat=True))
    done_before = set(units().filter(status=SweepUnit.Status.DONE).values_list("index", flat=True))
    assert job_of(sweep.job_id).status == Job.Status.RUNNING
    assert 0 < len(done_before) < total

    watcher = ProgressWatcher(alice_client, sweep.job_id)
    watcher.reclaimed()
    assert not SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.RUNNING).exists()
    with start_worker() as second:
        wait_for(watcher.finished, timeout_s=180, log=second.log, every_s=0.05)
        sweep.refresh_from_db()
        job = job_of(sweep.job_id)
        assert job.status == Job.Status.SUCCEEDED, (job.error, sweep.error, second.log()[-3000:])
        assert sweep.status == Sweep.Status.SUCCEEDED
        assert watcher.statuses() <= {"running", "succeeded"}
        progress = [payload["progress"] for payload in watcher.seen]
        assert progress == sorted(progress), progress  # never backwards
        # Every unit done, once: the dead task's unit twice claimed, every other one once.
        assert units().filter(status=SweepUnit.Status.DONE).count() == total
        attempts = dict(units().values_list("index", "attempts"))
        assert {index for index, count in attempts.items() if count == 2} == set(held)
        assert all(attempts[index] == 1 for index in done_before)

        reference = sweep_launch(study=study, cases=cases, created_by=alice, delta=0.01)
        wait_for(lambda: job_of(reference.job_id).is_finished, timeout_s=180, log=second.log)
    reference.refresh_from_db()
    assert reference.status == Sweep.Status.SUCCEEDED
    assert sweep.perturbations == reference.perturbations  # no unit counted twice
    assert sweep.deltas_sha256 == reference.deltas_sha256  # the deltas, every image x dimension x end
    assert effects_of(sweep) == effects_of(reference)
    assert sweep.dimension_effects.count() == study.style_dims


@pytest.fixture
def lab_case(alice, tiny_lab_models):
    study = study_with_ranges(created_by=alice, models=tiny_lab_models, name="Lab study")
    return study, projected_cases(study, created_by=alice)[0]


#: Enough optimisation steps for a kill to land in the middle of a run.
SLOW_GCI = {**FAST_LAB_PARAMETERS["gci"], "steps": 100}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_lab_run_whose_worker_is_killed_is_redone_with_the_same_result(
    transactional_db, start_worker, alice, lab_case
):
    study, case = lab_case
    with start_worker() as first:
        run = lab_run_create(study=study, case=case, method="gci", parameters=SLOW_GCI, created_by=alice)
        wait_for(lambda: job_of(run.job_id).progress >= 0.2, timeout_s=120, log=first.log, every_s=0.05)
        kill(first)
    assert job_of(run.job_id).status == Job.Status.RUNNING
    assert LabRun.objects.get(pk=run.pk).status == LabRun.Status.RUNNING

    # Nobody polls this time: the restarted worker's own reaper finds the lost run once its lease expires.
    statuses = set()

    def finished() -> bool:
        job = job_of(run.job_id)
        statuses.add(job.status)
        return job.is_finished

    with start_worker() as second:
        wait_for(finished, timeout_s=180, log=second.log)
        run.refresh_from_db()
        assert run.status == LabRun.Status.SUCCEEDED, (run.error, second.log()[-3000:])
        assert statuses <= {Job.Status.RUNNING, Job.Status.SUCCEEDED}
        assert_reclaimed_once(job_of(run.job_id))
        assert "Reclaimed 1 task(s) of lost workers." in second.log()

        reference = lab_run_create(
            study=study, case=case, method="gci", parameters=SLOW_GCI, created_by=alice
        )
        wait_for(lambda: job_of(reference.job_id).is_finished, timeout_s=180, log=second.log)
    reference.refresh_from_db()
    assert reference.status == LabRun.Status.SUCCEEDED
    assert run.prob_counterfactual == reference.prob_counterfactual
    assert run.counterfactual_image.read() == reference.counterfactual_image.read()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_sweep_whose_worker_is_killed_can_still_be_cancelled(
    transactional_db, start_worker, alice, alice_client, sweep_study
):
    study, cases = sweep_study
    with start_worker() as first:
        sweep = sweep_launch(study=study, cases=cases, created_by=alice, delta=0.01)
        wait_for(
            lambda: SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE).exists(),
            timeout_s=120,
            log=first.log,
            every_s=0.05,
        )
        kill(first)

    # No worker at all now: the cancel still ends the job, at the latest once the lease has expired.
    response = alice_client.post(reverse("sweep-cancel", args=[sweep.pk]))
    assert response.status_code == 302
    watcher = ProgressWatcher(alice_client, sweep.job_id)
    started = time.monotonic()
    wait_for(watcher.finished, timeout_s=LEASE_S + 20, log=lambda: "")
    assert time.monotonic() - started < LEASE_S + 20
    sweep.refresh_from_db()
    job = job_of(sweep.job_id)
    assert job.status == Job.Status.CANCELLED
    assert sweep.status == Sweep.Status.CANCELLED
    assert not SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.RUNNING).exists()
    assert not JobLease.objects.filter(job=job, state__in=[JobLease.State.RUNNING, JobLease.State.QUEUED])

    # A worker that comes back later leaves the cancelled sweep alone.
    done = SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE).count()
    with start_worker() as later:
        time.sleep(LEASE_S)
        assert job_of(sweep.job_id).status == Job.Status.CANCELLED, later.log()[-3000:]
    assert SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE).count() == done


def test_answers_submitted_while_every_worker_is_down_are_saved(transactional_db, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    first, second = review_set.items.order_by("position")
    client = APIClient()
    client.force_authenticate(bob)
    answer = {"q1_meaningful": True, "clinical_description": "hazy", "q2_pneumonia": "yes", "confidence": 4}

    draft = client.post("/api/annotations/", {"item": first.pk, "q1_meaningful": True}, format="json")
    submitted = client.post("/api/annotations/", {"item": second.pk, **answer, "submit": True}, format="json")

    assert draft.status_code == 201, draft.content
    assert submitted.status_code in (200, 201), submitted.content
    assert Annotation.objects.get(item=first, reader=bob).is_draft
    saved = Annotation.objects.get(item=second, reader=bob)
    assert not saved.is_draft and saved.clinical_description == "hazy"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_crash_recovery_over_redis_with_postgresql():
    """The tests above again, with Redis as the broker (own key prefix) and PostgreSQL as the database."""
    import redis

    database = POSTGRES_URL.rsplit("/", 1)[0] + "/reviewapp_crash"
    postgres_url()
    prefix = f"reviewapp-crash-{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": redis_url(),
        "CELERY_BROKER_KEY_PREFIX": prefix,
    }
    try:
        result = _run_this_module(env)
    finally:
        server = redis.Redis.from_url(redis_url())
        for key in server.scan_iter(f"{prefix}*"):
            server.delete(key)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    assert "5 passed" in result.stdout, result.stdout[-3000:]


def _run_this_module(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).relative_to(REPO_ROOT)), "-p", "no:cacheprovider",
         "-q", "-k", "not over_redis"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )  # fmt: skip
