"""``manage.py rundemo``: migrate, load the demo study, print log-ins, serve with one worker until Ctrl-C."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from reviewapp.demo import demo_logins, demo_seed_if_empty
from reviewapp.supervisor import supervise


class Command(BaseCommand):
    help = "Run the demo: web server and one Celery worker (queues default and gpu) until Ctrl-C."

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
        self.stdout.write("Ctrl-C stops the web server and the worker.\n")
        self.stdout.flush()

        manage_py = str(settings.BASE_DIR / "manage.py")
        status = supervise(
            {
                "web server": [sys.executable, manage_py, "runserver", "--noreload", addr],
                "worker": [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "reviewapp",
                    "worker",
                    "--queues",
                    "default,gpu",
                    "--hostname",
                    "demo@%h",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                ],
            }
        )
        if status:
            sys.exit(status)
