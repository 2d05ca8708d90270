"""Interactive work (lab runs) has its own queue and worker; a pending job says where it waits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reviewapp.celery import TASK_QUEUES
from reviewapp.management.commands.rundemo import demo_processes
from reviewapp.models import Job
from reviewapp.selectors.jobs import job_queue, job_queue_position
from reviewapp.services.jobs import Tasks, job_create, job_start, registered_task

pytestmark = pytest.mark.django_db


def test_lab_runs_go_to_the_interactive_queue_and_sweeps_do_not():
    registered_task(Tasks.LAB_RUN)

    assert TASK_QUEUES[Tasks.LAB_RUN] == "interactive"
    assert TASK_QUEUES[Tasks.SWEEP_RUN_UNITS] == "gpu"
    assert job_queue(job=Job(kind="counterfactual")) == "interactive"
    assert job_queue(job=Job(kind="sweep")) == "gpu"
    assert job_queue(job=Job(kind="self-test")) == "default"


def test_the_demo_runs_a_worker_for_the_interactive_queue_only():
    processes = demo_processes(manage_py="manage.py", addr="127.0.0.1:8000", concurrency=2)

    def queues_of(argv):
        return argv[argv.index("--queues") + 1].split(",")

    assert queues_of(processes["worker"]) == ["default", "gpu"]
    assert queues_of(processes["interactive worker"]) == ["interactive"]
    hostnames = {
        argv[argv.index("--hostname") + 1] for name, argv in processes.items() if name != "web server"
    }
    assert len(hostnames) == 2


def test_a_pending_job_knows_its_place_in_its_own_queue(alice):
    sweep = job_create(kind="sweep", created_by=alice)
    job_start(job=sweep)
    first = job_create(kind="counterfactual", created_by=alice)
    second = job_create(kind="counterfactual", created_by=alice)
    job_create(kind="projection", created_by=alice)  # another queue: not ahead of the lab runs

    assert job_queue_position(job=first) == {"queue": "interactive", "ahead": 0, "running": 0}
    assert job_queue_position(job=second) == {"queue": "interactive", "ahead": 1, "running": 0}
    job_start(job=first)
    second.refresh_from_db()
    assert job_queue_position(job=second) == {"queue": "interactive", "ahead": 0, "running": 1}
    first.refresh_from_db()
    assert job_queue_position(job=first) is None


def test_the_progress_poll_answers_the_queue_position(alice, alice_client):
    job_create(kind="counterfactual", created_by=alice)
    waiting = job_create(kind="counterfactual", created_by=alice)

    state = alice_client.get(reverse("job-progress", args=[waiting.pk])).json()

    assert state["status"] == "pending"
    assert state["queue"] == {"queue": "interactive", "ahead": 1, "running": 0}
