"""``manage.py unlock_login [--user NAME] [--address ADDR]``: lift a log-in lockout before it runs out."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.services.login_throttle import login_unlock


class Command(BaseCommand):
    help = (
        "Lift the log-in lockout of an account (--user, the username as the person types it) and/or of a "
        "client address (--address), and forget their counted failures. Lockouts otherwise end by themselves "
        "after LOGIN_LOCKOUT_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="The username whose lockout to lift.")
        parser.add_argument("--address", help="The client address whose lockout to lift.")

    def handle(self, *args, user: str | None, address: str | None, **options) -> None:
        if not (user or "").strip() and not (address or "").strip():
            raise CommandError("Name an account with --user or a client address with --address.")
        try:
            lifted = login_unlock(username=user, address=address)
        except Exception as error:  # the cache (Redis) cannot be reached
            raise CommandError(
                f"The log-in lockouts are kept in the cache, which cannot be reached: {error}"
            ) from error
        named = " and ".join(
            f"{kind} {value}" for kind, value in (("account", user), ("address", address)) if value
        )
        if lifted:
            self.stdout.write(self.style.SUCCESS(f"Lifted the lockout of {', '.join(lifted)}."))
        else:
            self.stdout.write(f"No lockout of {named} was in force; its failed attempts are forgotten.")
