"""Reading the deployment's configuration from environment variables.

Every setting has an embedded default that needs no server (SQLite under ``var/``, kombu's filesystem
transport under ``var/broker/``), so a fresh checkout runs as is; production overrides them through the
environment. The functions here are pure so that settings, tests and the worker helper agree on them.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FILESYSTEM_BROKER_URL = "filesystem://localhost//"


def env_bool(name: str, *, default: bool = False) -> bool:
    """True when the variable holds 1/true/yes/on (any case), ``default`` when it is unset or empty."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in TRUE_WORDS


def env_list(name: str, *, default: list[str]) -> list[str]:
    """A comma-separated variable as a list of non-empty, stripped items."""
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or list(default)


def env_int(name: str, *, default: int, minimum: int = 0) -> int:
    """An integer variable (``default`` when unset or empty); a value that is not an integer >= ``minimum`` is a
    configuration error."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {number}")
    return number


def env_path(name: str, *, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def database_config(url: str | None, *, var_dir: Path, conn_max_age: int = 0) -> dict:
    """Django's ``DATABASES["default"]`` for a ``DATABASE_URL`` (SQLite under ``var_dir`` when unset).

    SQLite is shared by the web server and the worker processes, so it runs in WAL mode, takes its write lock
    at the start of a transaction and waits for a busy database instead of failing at once. A server database
    keeps each process's connection open for ``conn_max_age`` seconds (``DATABASE_CONN_MAX_AGE``; 0: a new
    connection per request), checked before reuse.
    """
    config = dj_database_url.parse(url or f"sqlite:///{var_dir / 'db.sqlite3'}", conn_max_age=0)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    else:
        config["CONN_HEALTH_CHECKS"] = True
        config["CONN_MAX_AGE"] = conn_max_age
    return config


def cache_config(url: str | None) -> dict:
    """Django's ``CACHES["default"]`` for a ``CACHE_URL``: this process's memory when unset (``locmem://``),
    Redis for ``redis://host:6379/1`` (what several web processes must share for log-in throttling)."""
    url = (url or "").strip() or "locmem://"
    scheme = urlsplit(url).scheme
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "reviewapp"}
    if scheme in {"redis", "rediss"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ValueError(f"CACHE_URL must start with locmem://, redis:// or rediss://, not {url!r}")


def database_url(settings_dict: dict) -> str:
    """The URL of the database a Django connection uses, for handing it to another process.

    Takes ``connection.settings_dict``, so inside a test session it names the test database.
    """
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine == "django.db.backends.postgresql":
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{settings_dict['NAME']}"
    raise ValueError(f"No URL form known for the database engine {engine}")


def broker_config(url: str | None, *, var_dir: Path, key_prefix: str = "") -> tuple[str, dict]:
    """Celery's broker URL and transport options for a ``CELERY_BROKER_URL``.

    Unset, or ``filesystem://``, means kombu's filesystem transport under ``var_dir/broker``; an absolute
    path (``filesystem:///srv/broker``) names another folder. Messages, and the exchange tables that
    let ``celery inspect``/``control ping`` broadcast, live in that folder, so every process that shares it
    shares the broker. Other URLs (``redis://``, ``amqp://``) pass through unchanged; with Redis,
    ``key_prefix`` (``CELERY_BROKER_KEY_PREFIX``) starts every key the broker writes, so that several
    deployments can share one Redis database.
    """
    url = (url or "").strip() or "filesystem://"
    scheme = urlsplit(url).scheme
    if scheme != "filesystem":
        options: dict = {}
        if scheme in {"redis", "rediss"}:
            # A task's message is acknowledged when it ends (acks_late); Redis redelivers one that stays
            # unacknowledged past this, so it must exceed the longest task. The work of a worker that died
            # is sent again long before, by the job leases (reviewapp.services.leases); the late redelivery
            # then finds its lease reclaimed and is dropped.
            options["visibility_timeout"] = 6 * 3600
            if key_prefix:
                options["global_keyprefix"] = key_prefix
        return url, options
    path = urlsplit(url).path
    folder = Path(path).resolve() if path.strip("/") else var_dir / "broker"
    # The transport ignores the host; naming one keeps kombu from warning that none was given.
    return FILESYSTEM_BROKER_URL, filesystem_transport_options(folder)


def filesystem_transport_options(folder: Path) -> dict:
    """Transport options of kombu's filesystem transport rooted at ``folder`` (created if missing)."""
    queue_folder = folder / "queue"
    control_folder = folder / "control"
    for path in (queue_folder, control_folder):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "control_folder": str(control_folder),
        # The transport polls its folder; a short interval keeps control pings and progress snappy.
        "polling_interval": 0.25,
    }


def secret_key(value: str | None, *, var_dir: Path) -> str:
    """``SECRET_KEY`` from the environment, else one generated once and kept in ``var_dir/secret_key``.

    The web server and the worker may start at the same moment, so the file is written under a temporary
    name and linked into place: whichever process links first wins and the other reads its key.
    """
    if value:
        return value
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        var_dir.mkdir(parents=True, exist_ok=True)
        temporary = var_dir / f".secret_key.{os.getpid()}"
        temporary.write_text(get_random_secret_key())
        temporary.chmod(0o600)
        try:
            os.link(temporary, key_file)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return key_file.read_text().strip()
