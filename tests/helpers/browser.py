"""Playwright on Debian's Chromium for browser tests (Playwright's own browser builds are not used)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.helpers.services import chromium_path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser; skips (or fails with REQUIRE_SERVICES=1) when Chromium is missing."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls stay synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def wait_until(page, predicate: str, arg: object = None, *, timeout: float = 30.0) -> None:
    """Poll ``predicate`` (a JavaScript expression, or a function of ``arg``) until it is true.

    Playwright's own ``wait_for_function`` builds its predicate with ``eval``, which the pages'
    Content-Security-Policy forbids; ``page.evaluate`` runs through the browser's debugging protocol instead.
    Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Still false after {timeout:g} s: {predicate}")
        page.wait_for_timeout(50)
