"""The project's Celery application.

Three queues: ``default`` for bookkeeping, ``gpu`` for the engine's heavy work (projection, sweeps), and
``interactive`` for the engine's short runs a person waits for (the Counterfactual lab), so that production
workers on GPU machines can take only ``celery -A reviewapp worker -Q gpu`` and a lab run never waits behind a
sweep when a worker takes ``interactive``. Tasks are declared
with :func:`reviewapp.tasks.base.job_task`, never with ``app.task`` directly.
"""

from __future__ import annotations

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")


class ProjectTask(Task):
    """The base of every task of the project.

    A message is acknowledged only when its task ends, and requeued when the worker running it dies, so
    a killed worker loses no work; tasks are therefore written to be idempotent and take primary keys.
    """

    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


#: Task name -> queue, filled by the task decorator and read by :func:`route_task` when a task is sent.
TASK_QUEUES: dict[str, str] = {}


def route_task(name: str, args: object, kwargs: object, options: dict, task: Task | None = None, **kw):
    """Celery router (``task_routes``): the queue the task was declared for."""
    queue = TASK_QUEUES.get(name)
    return {"queue": queue} if queue else None


app = Celery("reviewapp", task_cls=ProjectTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
