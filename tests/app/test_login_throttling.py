"""Repeated wrong passwords pause log-in for the account and for the client address, with the wait shown."""

from __future__ import annotations

import pytest

from reviewapp.services import login_throttle
from tests.app.conftest import PASSWORD

LOCKED = b"Too many failed log-in attempts"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_LOCKOUT_SECONDS = 600
    # Dozens of log-ins per test: a fast hasher keeps the module quick (the hasher is not under test here).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def clock(monkeypatch):
    """The lockouts' clock, moved by hand."""

    class Clock:
        time = 1_000_000.0

        def advance(self, seconds: float) -> None:
            self.time += seconds

    clock = Clock()
    monkeypatch.setattr(login_throttle, "now", lambda: clock.time)
    return clock


def log_in(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def logged_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def test_after_repeated_wrong_passwords_even_the_right_one_is_refused_with_the_wait(client, bob, clock):
    for _ in range(2):
        response = log_in(client, "bob", "wrong")
        assert b"Please enter a correct username and password" in response.content
    # The failure that reaches the limit already says so.
    assert b"try again in 10 minutes" in log_in(client, "bob", "wrong").content

    response = log_in(client, "bob", PASSWORD)

    assert response.status_code == 200
    assert LOCKED in response.content
    assert b"try again in 10 minutes" in response.content
    assert logged_in_as(client) is None

    clock.advance(570)
    assert b"try again in 30 seconds" in log_in(client, "bob", PASSWORD).content
    assert logged_in_as(client) is None


def test_after_the_lockout_period_the_right_password_logs_in(client, bob, clock):
    for _ in range(3):
        log_in(client, "bob", "wrong")
    assert LOCKED in log_in(client, "bob", PASSWORD).content

    clock.advance(601)
    response = log_in(client, "bob", PASSWORD)

    assert response.status_code == 302
    assert response.url == "/"
    assert logged_in_as(client) == str(bob.pk)


def test_the_account_is_locked_whatever_the_case_of_the_username_and_from_any_address(client, bob, clock):
    for index in range(3):
        log_in(client, "BOB" if index % 2 else "bob", "wrong", REMOTE_ADDR=f"10.0.0.{index + 1}")

    response = log_in(client, "bob", PASSWORD, REMOTE_ADDR="10.0.0.99")

    assert LOCKED in response.content
    assert logged_in_as(client) is None


def test_a_successful_log_in_forgives_the_accounts_earlier_failures(client, bob, clock):
    for _ in range(2):
        log_in(client, "bob", "wrong")
    assert log_in(client, "bob", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        log_in(client, "bob", "wrong")

    assert log_in(client, "bob", PASSWORD).status_code == 302


def test_one_address_trying_many_accounts_is_locked_but_others_are_not(client, bob, charlie, clock):
    for index in range(5):
        log_in(client, f"guess{index}", "wrong", REMOTE_ADDR="203.0.113.7")

    refused = log_in(client, "charlie", PASSWORD, REMOTE_ADDR="203.0.113.7")
    assert LOCKED in refused.content
    assert logged_in_as(client) is None

    accepted = log_in(client, "charlie", PASSWORD, REMOTE_ADDR="198.51.100.2")
    assert accepted.status_code == 302


def test_the_client_address_comes_from_the_trusted_proxys_header_when_configured(
    client, bob, clock, settings
):
    settings.CLIENT_ADDRESS_HEADER = "X-Forwarded-For"
    for index in range(5):
        # A client may put anything first; the proxy appends the address it saw.
        log_in(client, f"guess{index}", "wrong", HTTP_X_FORWARDED_FOR=f"1.2.3.{index}, 203.0.113.7")

    assert LOCKED in log_in(client, "bob", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7").content
    assert log_in(client, "bob", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302


def test_the_admin_log_in_is_throttled_too(client, alice, clock):
    for _ in range(3):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})

    response = client.post("/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    assert LOCKED in response.content
    assert logged_in_as(client) is None


def test_the_api_token_log_in_answers_429_with_retry_after(client, bob, clock):
    for _ in range(3):
        failed = client.post("/api/auth/token/", {"username": "bob", "password": "wrong"})
        assert failed.status_code == 400

    refused = client.post("/api/auth/token/", {"username": "bob", "password": PASSWORD})

    assert refused.status_code == 429
    assert refused["Retry-After"] == "600"
    assert "try again in 10 minutes" in refused.json()["detail"]
    # The log-in page shares the count.
    assert LOCKED in log_in(client, "bob", PASSWORD).content

    clock.advance(601)
    assert client.post("/api/auth/token/", {"username": "bob", "password": PASSWORD}).status_code == 200


def test_log_in_still_works_unthrottled_while_the_cache_is_down(client, bob, monkeypatch, caplog):
    class Unreachable:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

            return fail

    monkeypatch.setattr(login_throttle, "cache", Unreachable())

    for _ in range(4):
        assert log_in(client, "bob", "wrong").status_code == 200
    response = log_in(client, "bob", PASSWORD)

    assert response.status_code == 302
    assert "Log-in throttling is off" in caplog.text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 second"), (45, "45 seconds"), (60, "60 seconds"), (61, "2 minutes"), (900, "15 minutes")],
)
def test_the_wait_is_written_in_words(seconds, text):
    assert login_throttle.wait_text(seconds) == text


@pytest.mark.django_db
def test_the_api_token_log_in_refuses_deeply_nested_json_with_a_400(client):
    body = "[" * 5000 + "]" * 5000
    response = client.post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    token = client.post(
        "/api/auth/token/", {"username": "nobody", "password": "x"}, content_type="application/json"
    )
    assert token.status_code == 400


def test_an_admin_can_lift_a_lockout_before_it_runs_out(client, bob, clock):
    from io import StringIO

    from django.core.management import call_command

    for _ in range(3):
        log_in(client, "bob", "wrong")
    assert LOCKED in log_in(client, "bob", PASSWORD).content

    out = StringIO()
    call_command("unlock_login", "--user", "Bob", stdout=out)  # as typed, any case

    assert "Lifted the lockout of account Bob" in out.getvalue()
    log_in(client, "bob", PASSWORD)
    assert logged_in_as(client) is not None


def test_lifting_an_address_lockout_and_asking_for_nothing(client, bob, charlie, clock):
    from io import StringIO

    from django.core.management import CommandError, call_command

    for name in ("x1", "x2", "x3", "x4", "x5"):
        log_in(client, name, "wrong", REMOTE_ADDR="10.0.0.7")
    assert LOCKED in log_in(client, "charlie", PASSWORD, REMOTE_ADDR="10.0.0.7").content

    out = StringIO()
    call_command("unlock_login", "--address", "10.0.0.7", stdout=out)
    assert "Lifted the lockout of address 10.0.0.7" in out.getvalue()
    log_in(client, "charlie", PASSWORD, REMOTE_ADDR="10.0.0.7")
    assert logged_in_as(client) is not None

    out = StringIO()
    call_command("unlock_login", "--user", "bob", stdout=out)
    assert "No lockout of account bob was in force" in out.getvalue()
    with pytest.raises(CommandError, match="Name an account"):
        call_command("unlock_login")
