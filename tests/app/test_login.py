"""People log in with a username and password and land on their dashboard."""

from __future__ import annotations

import pytest

from tests.app.conftest import PASSWORD


def test_alice_logs_in_and_sees_the_studies(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert b'id="studies"' in response.content
    assert b'id="worklist"' not in response.content


def test_bob_logs_in_and_sees_his_worklist(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, follow=True)

    assert b'id="worklist"' in response.content
    assert b'id="studies"' not in response.content


def test_a_wrong_password_shows_a_message(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": "nope"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_it_returns_to_the_page_asked_for(client, bob):
    response = client.post(
        "/accounts/login/?next=/jobs/1/progress",
        {"username": "bob", "password": PASSWORD, "next": "/jobs/1/progress"},
    )

    assert response.url == "/jobs/1/progress"


@pytest.mark.django_db
def test_log_out_ends_the_session(bob_client):
    response = bob_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert bob_client.get("/").status_code == 302
