"""Errors a person or a script meets: JSON from the API's CSV endpoints, styled 403/404/500 pages, a favicon."""

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def api_bob(bob) -> APIClient:
    client = APIClient()
    client.force_authenticate(bob)
    return client


@pytest.mark.parametrize("accept", ["text/csv", "application/json", "*/*"])
def test_a_csv_endpoint_answers_a_refusal_as_json(api_bob, accept):
    review_set = review_set_with_items(readers=[], dimensions=1, images_per_dimension=1)

    response = api_bob.get(f"/api/sweeps/{review_set.sweep_id}/dimensions-csv/", HTTP_ACCEPT=accept)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Only admins can use this endpoint."}
    assert b"ErrorDetail" not in response.content


def test_a_csv_endpoint_answers_a_missing_row_as_json_404(alice):
    client = APIClient()
    client.force_authenticate(alice)

    response = client.get("/api/sweeps/999999/dimensions-csv/", HTTP_ACCEPT="text/csv")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_a_csv_endpoint_still_streams_csv_when_allowed(alice):
    review_set = review_set_with_items(readers=[], dimensions=1, images_per_dimension=1)
    client = APIClient()
    client.force_authenticate(alice)

    response = client.get(f"/api/sweeps/{review_set.sweep_id}/dimensions-csv/", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header = b"".join(response.streaming_content).decode().splitlines()[0]
    assert "style_dimension" in header.split(",")


def test_the_403_page_is_a_styled_page_with_the_reason(bob_client):
    response = bob_client.get(reverse("study-new"))

    assert response.status_code == 403
    text = response.content.decode()
    assert "css/app.css" in text and "favicon" in text
    assert "Only admins can open this page." in text
    assert reverse("home") in text


def test_the_404_page_is_a_styled_page(alice_client):
    response = alice_client.get("/no/such/page/")

    assert response.status_code == 404
    text = response.content.decode()
    assert "css/app.css" in text
    assert "This page does not exist" in text
    assert "/no/such/page/" in text


def test_the_500_page_is_styled_and_needs_no_request_context():
    from django.template.loader import render_to_string

    text = render_to_string("500.html")

    assert "css/app.css" in text
    assert "Something went wrong" in text


@override_settings(DEBUG=False)
def test_a_server_error_answers_the_styled_page(alice, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a failure inside the page")

    # The URLconf holds the view itself, so break something the view calls.
    monkeypatch.setattr("reviewapp.views.home.render", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice)

    response = client.get(reverse("home"))

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_every_page_links_the_favicon_and_it_is_served(alice_client):
    page = alice_client.get(reverse("home")).content.decode()
    assert 'rel="icon"' in page

    redirect = Client().get("/favicon.ico")
    assert redirect.status_code == 301
    assert redirect["Location"].endswith("img/favicon.ico")
