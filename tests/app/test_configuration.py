"""Reading configuration values from the environment."""

from __future__ import annotations

from reviewapp.config import broker_config, database_config, database_url, env_bool, secret_key


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


def test_the_canonical_filesystem_url_means_the_default_folder(tmp_path):
    url, options = broker_config("filesystem://localhost//", var_dir=tmp_path)

    assert options["data_folder_in"] == str(tmp_path / "broker" / "queue")
