"""Load: simulated reviewers reading, autosaving and submitting against gunicorn + PostgreSQL + Redis.

    .venv/bin/python bench/load.py [--reviewers 20] [--duration 120] [--workers 4] [--items 12]
        [--postgres postgres://postgres@127.0.0.1:5432] [--database review_load]
        [--redis redis://127.0.0.1:6379/6] [--think 0] [--json FILE] [--smoke]

The bench creates the PostgreSQL database ``--database`` (it must not exist), migrates it, seeds one review set of
``--items`` items with lifelike 256 px images (the phantoms of the reviewer guide's screenshots) assigned to
``--reviewers`` reviewers, and starts ``gunicorn reviewapp.wsgi`` with ``--workers`` processes; Redis (the
database index in ``--redis``, flushed at the end) is the cache and the broker. Each simulated reviewer is a
thread with its own keep-alive connection and session: it logs in, then goes through its items again and again as
the reading screen does: the page, its six images, two autosaves of a draft, then the submitted answers (``--think``
seconds between requests, none by default: each reviewer sends its next request as soon as the last is
answered). After ``--duration`` seconds it prints requests per second, errors and the 50th/95th percentile latency
per kind of request, stops the server and drops the database. Any error (a status other than the expected one,
or a refused connection) is counted and makes the exit status 1.

``--smoke`` is a short check of the bench itself: 2 reviewers, 4 items, 3 seconds.

The last line is machine-readable: ``load: {"requests_per_second": ..., "errors": ..., ...}``.
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "load-bench reader password 42"
KINDS = ("reading screen", "image", "autosave", "submit")


# --- the server side: database, seed, gunicorn ------------------------------------------------------------------


def run_sql(postgres: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{postgres.rstrip('/')}/postgres", autocommit=True) as connection:
        connection.execute(statement)


def server_environment(args: argparse.Namespace, folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
        DATABASE_URL=f"{args.postgres.rstrip('/')}/{args.database}",
        CACHE_URL=args.redis,
        CELERY_BROKER_URL=args.redis,
        MEDIA_ROOT=str(folder / "media"),
        VAR_DIR=str(folder / "var"),
        SECRET_KEY="load-bench-secret-key-not-for-production-0123456789abcdefghijklmnop",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def seed(readers: int, items: int, folder: Path) -> dict:
    """Runs inside the server's environment (``--seed``): one review set, ``readers`` reviewers assigned."""
    import django

    django.setup()
    from reviewapp.services.users import user_create
    from tests.helpers.showcase import showcase_review_set

    people = [
        user_create(username=f"reader{index:02d}", password=PASSWORD, role="reviewer")
        for index in range(readers)
    ]
    # Two dimensions, items split between them.
    review_set = showcase_review_set(readers=people, tmp_path=folder, images_per_dimension=max(1, items // 2))
    return {"review_set": review_set.pk, "readers": [person.username for person in people]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/accounts/login/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer within {timeout:g} s")


# --- the client side: simulated reviewers ----------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if not ok:
                self.errors[kind] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{kind}: {detail}")


class Reviewer:
    """One person at the reading screen, over one keep-alive connection with its own cookies."""

    def __init__(self, port: int, username: str, review_set: int, results: Results, think: float) -> None:
        self.port = port
        self.username = username
        self.review_set = review_set
        self.results = results
        self.think = think
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, kind: str, method: str, path: str, *, data: dict | None = None, expect: int = 200):
        body = urlencode(data, doseq=True) if data is not None else None
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.results.add(kind, time.perf_counter() - started, False, f"{method} {path}: {error!r}")
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return None, b""
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})
        ok = response.status == expect
        self.results.add(kind, elapsed, ok, f"{method} {path}: {response.status}")
        if self.think:
            time.sleep(self.think)
        return (response if ok else None), content

    def log_in(self) -> bool:
        """The log-in page, then the credentials (before the timed load)."""
        _, page = self.request("log-in", "GET", "/accounts/login/")
        token = form_token(page.decode())
        response, _ = self.request(
            "log-in",
            "POST",
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
            expect=302,
        )
        return response is not None

    def read_item(self, position: int) -> None:
        path = f"/reviews/{self.review_set}/items/{position}/"
        response, content = self.request("reading screen", "GET", path)
        if response is None:
            return
        page = content.decode()
        config = json.loads(
            html.unescape(re.search(r'id="viewer-config"[^>]*>(.*?)</script>', page, re.S).group(1))
        )
        for url in config["images"].values():
            self.request("image", "GET", url)
        fields = hidden_fields(page)
        q2 = re.findall(r'name="q2_pneumonia" value="([^"]+)"', page)
        confidence = re.findall(r'name="confidence" value="([^"]+)"', page)
        answers = {**fields, "q1_meaningful": "no", "comment": f"{self.username} on item {position}"}
        self.autosave(config["autosaveUrl"], answers, seconds=5)
        answers.update(q2_pneumonia=q2[0], confidence=confidence[len(confidence) // 2])
        self.autosave(config["autosaveUrl"], answers, seconds=9)
        self.request("submit", "POST", path, data={**answers, "seconds": "12"}, expect=302)

    def autosave(self, url: str, answers: dict, *, seconds: int) -> None:
        """One autosave; like the page, the next save names the version this one stored."""
        response, content = self.request("autosave", "POST", url, data={**answers, "seconds": str(seconds)})
        if response is not None:
            version = json.loads(content or b"{}").get("version")
            if version is not None:
                answers["version"] = str(version)

    def run(self, items: int, stop_at: float) -> None:
        position = 1
        while time.monotonic() < stop_at:
            self.read_item(position)
            position = position % items + 1
        self.connection.close()


def form_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the annotation form (the CSRF token and whatever else a browser would send)."""
    form = re.search(r'<form[^>]*id="annotation-form".*?</form>', page, re.S).group(0)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        if re.search(r'type="hidden"', tag):
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def run_threads(targets: list) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def report(results: Results, seconds: float) -> dict:
    rows = {}
    for kind in KINDS:
        values = results.latencies.get(kind, [])
        rows[kind] = {
            "requests": len(values),
            "per_second": round(len(values) / seconds, 1),
            "errors": results.errors.get(kind, 0),
            "p50_ms": milliseconds(percentile(values, 0.50)),
            "p95_ms": milliseconds(percentile(values, 0.95)),
        }
    every = [value for values in results.latencies.values() for value in values]
    summary = {
        "seconds": round(seconds, 1),
        "requests": len(every),
        "requests_per_second": round(len(every) / seconds, 1),
        "errors": sum(results.errors.values()),
        "p50_ms": milliseconds(percentile(every, 0.50)),
        "p95_ms": milliseconds(percentile(every, 0.95)),
        "kinds": rows,
    }
    print(f"{'request':<16}{'count':>8}{'per s':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for kind, row in rows.items():
        print(
            f"{kind:<16}{row['requests']:>8}{row['per_second']:>9}{row['errors']:>8}{row['p50_ms']:>9}{row['p95_ms']:>9}"
        )
    print(
        f"{'all':<16}{summary['requests']:>8}{summary['requests_per_second']:>9}{summary['errors']:>8}"
        f"{summary['p50_ms']:>9}{summary['p95_ms']:>9}"
    )
    for sample in results.error_samples:
        print(f"error: {sample}")
    return summary


# --- the whole run ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="Seconds of load.")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes.")
    parser.add_argument("--items", type=int, default=12, help="Items of the review set.")
    parser.add_argument(
        "--postgres", default="postgres://postgres@127.0.0.1:5432", help="Server URL, no name."
    )
    parser.add_argument("--database", default="review_load", help="Created, then dropped; must not exist.")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/6", help="Cache and broker; flushed at the end."
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="Seconds a reviewer waits after each answer."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--smoke", action="store_true", help="2 reviewers, 4 items, 3 seconds.")
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)  # internal: seed, write JSON here
    args = parser.parse_args(argv)
    if args.smoke:
        args.reviewers, args.items, args.duration, args.workers = 2, 4, 3.0, 2
    if args.seed:
        args.seed.write_text(json.dumps(seed(args.reviewers, args.items, args.seed.parent)))
        return 0
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        parser.error("--database: lower-case letters, digits and underscores")

    with tempfile.TemporaryDirectory(prefix="review-load-") as tmp:
        folder = Path(tmp)
        env = server_environment(args, folder)
        run_sql(args.postgres, f"CREATE DATABASE {args.database}")
        server = None
        try:
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=REPO_ROOT,
                env=env,
                check=True,
            )
            seeded_file = folder / "seeded.json"
            subprocess.run(
                [sys.executable, __file__, "--seed", str(seeded_file), "--reviewers", str(args.reviewers),
                 "--items", str(args.items)],
                cwd=REPO_ROOT, env=env, check=True,
            )  # fmt: skip
            seeded = json.loads(seeded_file.read_text())
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "reviewapp.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", str(args.workers), "--log-level", "warning"],
                cwd=REPO_ROOT, env=env, start_new_session=True,
            )  # fmt: skip
            wait_for_server(port, server)
            print(
                f"set up in {time.monotonic() - started:.0f} s: {args.reviewers} reviewers, {args.items} items, "
                f"gunicorn with {args.workers} workers on port {port}; {args.duration:g} s of load",
                flush=True,
            )

            # Everyone logs in first (timed apart: a password hash is slow on purpose), then the load starts.
            results = Results()
            reviewers = [
                Reviewer(port, name, seeded["review_set"], results, args.think) for name in seeded["readers"]
            ]
            run_threads([reviewer.log_in for reviewer in reviewers])
            log_ins = results.latencies.pop("log-in", [])
            log_in_errors = results.errors.pop("log-in", 0)
            stop_at = time.monotonic() + args.duration
            load_started = time.monotonic()
            run_threads(
                [lambda reviewer=reviewer: reviewer.run(args.items, stop_at) for reviewer in reviewers]
            )
            summary = report(results, time.monotonic() - load_started)
            summary["log_in"] = {
                "requests": len(log_ins),
                "errors": log_in_errors,
                "p50_ms": milliseconds(percentile(log_ins, 0.5)),
                "p95_ms": milliseconds(percentile(log_ins, 0.95)),
            }
            summary["errors"] += log_in_errors
            print(
                f"log-in (before the load): {len(log_ins)} requests, {log_in_errors} errors, "
                f"p50 {summary['log_in']['p50_ms']} ms"
            )
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
            run_sql(args.postgres, f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
            flush_redis(args.redis)
    summary.update(reviewers=args.reviewers, workers=args.workers, items=args.items, think=args.think)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print("load: " + json.dumps(summary))
    return 1 if summary["errors"] or not summary["requests"] else 0


def flush_redis(url: str) -> None:
    import redis

    parts = urlsplit(url)
    if parts.scheme in {"redis", "rediss"}:
        redis.Redis.from_url(url).flushdb()


if __name__ == "__main__":
    sys.exit(main())
