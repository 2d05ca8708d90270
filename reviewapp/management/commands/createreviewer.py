"""``manage.py createreviewer USERNAME EMAIL [--password PW] [--admin]``: add a person who can log in."""

from __future__ import annotations

import getpass
import secrets
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.services.users import user_create


class Command(BaseCommand):
    help = (
        "Create a reviewer (or, with --admin, an admin). Without --password the password is asked for on a "
        "terminal, or generated and printed when there is none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("email")
        parser.add_argument("--password", help="The password; asked for or generated when left out.")
        parser.add_argument("--admin", action="store_true", help="Create an admin instead of a reviewer.")

    def handle(self, *args, username: str, email: str, password: str | None, admin: bool, **options) -> None:
        generated = False
        if password is None:
            if sys.stdin.isatty():
                password = getpass.getpass("Password: ")
                if password != getpass.getpass("Password (again): "):
                    raise CommandError("The passwords differ.")
            else:
                password, generated = secrets.token_urlsafe(12), True
        role = "admin" if admin else "reviewer"
        try:
            user = user_create(username=username, email=email, password=password, role=role)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Created the {role} {user.get_username()}."))
        if generated:
            self.stdout.write(f"Password: {password}")
