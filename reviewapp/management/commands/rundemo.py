"""``manage.py rundemo``: migrate, load the demo study, print log-ins, serve with two workers until Ctrl-C.

One worker takes the ``default`` and ``gpu`` queues (sweeps, projections), the other only ``interactive``
(lab runs), so a lab run starts at once even while a sweep keeps the first worker busy.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from reviewapp.demo import demo_logins, demo_seed_if_empty
from reviewapp.supervisor import supervise


class Command(BaseCommand):
    help = (
        "Run the demo: web server, a Celery worker on the default and gpu queues and one on the interactive "
        "queue, until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address of the web server.")
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")

    def handle(self, *args, addr: str, concurrency: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        demo_seed_if_empty(stdout=self.stdout)
        logins = demo_logins()
        connections.close_all()

        url = f"http://{addr}"
        self.stdout.write(self.style.SUCCESS(f"\nServing {url}/ (health: {url}/healthz)"))
        for username, (role, password) in logins.items():
            self.stdout.write(f"  {role:<9} log-in: {username} / {password}")
        self.stdout.write("Ctrl-C stops the web server and the workers.\n")
        self.stdout.flush()

        manage_py = str(settings.BASE_DIR / "manage.py")
        status = supervise(demo_processes(manage_py=manage_py, addr=addr, concurrency=concurrency))
        if status:
            sys.exit(status)


def demo_processes(*, manage_py: str, addr: str, concurrency: int) -> dict[str, list[str]]:
    """The demo's processes (name -> argv): the web server, the worker of the heavy work and the worker of
    the interactive queue (one process: lab runs are short and one at a time is enough for a demo)."""

    def worker(queues: str, hostname: str, processes: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "reviewapp",
            "worker",
            "--queues",
            queues,
            "--hostname",
            hostname,
            "--concurrency",
            str(processes),
            "--loglevel",
            "INFO",
        ]

    return {
        "web server": [sys.executable, manage_py, "runserver", "--noreload", addr],
        "worker": worker("default,gpu", "demo@%h", concurrency),
        "interactive worker": worker("interactive", "demo-interactive@%h", 1),
    }
