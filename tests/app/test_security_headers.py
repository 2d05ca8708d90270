"""Every response carries a strict Content-Security-Policy with a fresh nonce; HTTPS settings redirect and pin."""

from __future__ import annotations

import re

import pytest

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.mark.django_db
def test_pages_allow_only_their_own_origin_and_no_inline_scripts(client):
    policy = directives(client.get("/accounts/login/"))

    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for name in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[name]
        assert "'unsafe-eval'" not in policy[name]
        assert [source for source in policy[name] if not NONCE.fullmatch(source)] == ["'self'"]


@pytest.mark.django_db
def test_the_nonce_is_new_on_every_request(client):
    first = NONCE.search(client.get("/accounts/login/")["Content-Security-Policy"]).group(1)
    second = NONCE.search(client.get("/accounts/login/")["Content-Security-Policy"]).group(1)

    assert first != second
    assert len(first) >= 16


@pytest.mark.django_db
def test_pages_of_the_app_have_no_inline_scripts_styles_or_handlers(alice_client, bob_client):
    # The browser test checks the pages in Chromium; this catches inline code in the HTML of the common pages.
    for client, url in [(alice_client, "/"), (bob_client, "/"), (bob_client, "/reviews/")]:
        html = client.get(url).content.decode()
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, url
        assert "<style" not in html, url
        assert re.search(r"\sstyle=", html) is None, url
        assert re.search(r"\son[a-z]+=", html) is None, url


@pytest.mark.django_db
def test_the_api_docs_pages_fit_the_policy(alice_client):
    swagger = alice_client.get("/api/docs/")
    nonce = NONCE.search(swagger["Content-Security-Policy"]).group(1)
    html = swagger.content.decode()

    assert f'<style nonce="{nonce}">' in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert alice_client.get("/api/docs/?script").status_code == 200
    # Redoc writes styles at run time: inline styles, never inline scripts, and no fonts from elsewhere.
    redoc = alice_client.get("/api/redoc/")
    policy = directives(redoc)
    assert "'unsafe-inline'" in policy["style-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert b"googleapis" not in redoc.content


@pytest.mark.django_db
def test_the_policy_can_be_tried_in_report_only_mode(client, settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = True

    response = client.get("/accounts/login/")

    assert "Content-Security-Policy" not in response
    assert "default-src 'self'" in response["Content-Security-Policy-Report-Only"]


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_except_the_health_check(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000

    redirected = client.get("/accounts/login/")
    secure = client.get("/accounts/login/", secure=True)

    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/accounts/login/"
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")
    assert client.get("/healthz").status_code in (200, 503)


@pytest.mark.django_db
def test_other_security_headers(client):
    response = client.get("/accounts/login/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
