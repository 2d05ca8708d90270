"""Reading configuration values from the environment."""

from __future__ import annotations

import pytest

from reviewapp.config import (
    broker_config,
    cache_config,
    database_config,
    database_url,
    env_bool,
    env_int,
    secret_key,
)


def test_a_secret_key_is_generated_once_and_then_reused(tmp_path):
    first = secret_key(None, var_dir=tmp_path)

    assert len(first) >= 50
    assert secret_key(None, var_dir=tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_a_secret_key_from_the_environment_wins(tmp_path):
    assert secret_key("given", var_dir=tmp_path) == "given"
    assert not (tmp_path / "secret_key").exists()


def test_debug_is_off_unless_set(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert env_bool("DEBUG") is False
    for word in ("1", "true", "Yes", "ON"):
        monkeypatch.setenv("DEBUG", word)
        assert env_bool("DEBUG") is True
    monkeypatch.setenv("DEBUG", "0")
    assert env_bool("DEBUG") is False


def test_a_filesystem_broker_url_may_name_its_folder(tmp_path):
    url, options = broker_config(f"filesystem://{tmp_path}/broker", var_dir=tmp_path / "var")

    assert url == "filesystem://localhost//"
    assert options["data_folder_in"] == str(tmp_path / "broker" / "queue")
    assert (tmp_path / "broker" / "control").is_dir()


def test_a_redis_broker_keeps_unacknowledged_tasks_longer_than_the_longest_task(tmp_path):
    url, options = broker_config("redis://127.0.0.1:6379/0", var_dir=tmp_path)

    assert url == "redis://127.0.0.1:6379/0"
    assert options["visibility_timeout"] >= 3600


def test_sqlite_waits_for_a_busy_database_and_uses_wal(tmp_path):
    config = database_config(None, var_dir=tmp_path)

    assert config["NAME"] == str(tmp_path / "db.sqlite3")
    assert config["OPTIONS"]["timeout"] >= 10
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


def test_a_database_url_round_trips_for_another_process(tmp_path):
    postgres = database_config("postgres://postgres@127.0.0.1:5432/test", var_dir=tmp_path)
    sqlite = database_config(None, var_dir=tmp_path)

    assert database_url(postgres) == "postgres://postgres@127.0.0.1:5432/test"
    assert database_url(sqlite) == f"sqlite:///{tmp_path / 'db.sqlite3'}"


def test_a_server_database_may_keep_its_connections(tmp_path):
    default = database_config("postgres://postgres@127.0.0.1:5432/test", var_dir=tmp_path)
    kept = database_config("postgres://postgres@127.0.0.1:5432/test", var_dir=tmp_path, conn_max_age=60)
    sqlite = database_config(None, var_dir=tmp_path, conn_max_age=60)

    assert (
        default["CONN_MAX_AGE"] == 0
    )  # the function's own default; settings pass DATABASE_CONN_MAX_AGE (60)
    assert kept["CONN_MAX_AGE"] == 60 and kept["CONN_HEALTH_CHECKS"]
    assert sqlite["CONN_MAX_AGE"] == 0  # SQLite opens a file: nothing to keep


def test_the_canonical_filesystem_url_means_the_default_folder(tmp_path):
    url, options = broker_config("filesystem://localhost//", var_dir=tmp_path)

    assert options["data_folder_in"] == str(tmp_path / "broker" / "queue")


def test_a_whole_number_variable_is_checked(monkeypatch):
    monkeypatch.delenv("LOGIN_LOCKOUT_SECONDS", raising=False)
    assert env_int("LOGIN_LOCKOUT_SECONDS", default=900) == 900
    monkeypatch.setenv("LOGIN_LOCKOUT_SECONDS", " 60 ")
    assert env_int("LOGIN_LOCKOUT_SECONDS", default=900) == 60
    monkeypatch.setenv("LOGIN_LOCKOUT_SECONDS", "ten")
    with pytest.raises(ValueError, match="LOGIN_LOCKOUT_SECONDS must be a whole number"):
        env_int("LOGIN_LOCKOUT_SECONDS", default=900)
    monkeypatch.setenv("LOGIN_LOCKOUT_SECONDS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        env_int("LOGIN_LOCKOUT_SECONDS", default=900, minimum=1)


def test_the_cache_is_local_memory_unless_a_redis_url_is_given():
    assert cache_config(None)["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    redis = cache_config("redis://127.0.0.1:6379/1")
    assert redis == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }
    with pytest.raises(ValueError, match="CACHE_URL must start with"):
        cache_config("memcached://127.0.0.1:11211")
