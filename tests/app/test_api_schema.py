"""The OpenAPI schema validates and documents the API; the docs page loads without outside assets."""

import pytest
from django.core.management import call_command
from django.urls import reverse


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    for path in (
        "/api/studies/",
        "/api/cases/",
        "/api/sweeps/",
        "/api/dimensions/",
        "/api/review-sets/",
        "/api/review-sets/{id}/export/",
        "/api/items/",
        "/api/annotations/",
        "/api/factor-annotations/",
    ):
        assert f"  {path}:" in schema


@pytest.mark.django_db
def test_the_schema_is_served_to_signed_in_users(bob_client):
    response = bob_client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "CXR counterfactual review API"


@pytest.mark.django_db
def test_the_docs_page_uses_the_bundled_swagger_ui(bob_client):
    response = bob_client.get(reverse("api-docs"))
    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in response.text
    assert "cdn" not in response.text.lower()


@pytest.mark.django_db
def test_the_docs_page_asks_for_a_log_in(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302
