"""Every page needs a signed-in user, except the log-in page and /healthz."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Django's admin handles its own log-in; /accounts/logout/ only ends a session.
# favicon: a redirect to the static icon, which browsers fetch before anybody logs in.
OPEN_VIEWS = {"login", "logout", "healthz", "admin:login", "favicon"}


def named_views(patterns=None, namespace: str = ""):
    """(qualified name, view) of every URL pattern of the project, admin included."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_views(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or entry.lookup_str}", entry.callback


def authenticates_itself(view) -> bool:
    """API views (DRF) authenticate each request themselves, by session or token, and answer 401/403."""
    from rest_framework.views import APIView

    cls = getattr(view, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def test_only_the_log_in_page_and_healthz_are_open():
    open_views = {
        name
        for name, view in named_views()
        if not getattr(view, "login_required", True) and not authenticates_itself(view)
    }

    assert open_views <= OPEN_VIEWS


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/jobs/1/progress", "/admin/", "/admin/reviewapp/job/"])
def test_it_redirects_anonymous_visitors_to_the_log_in_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/") or response.url.startswith("/admin/login/")


@pytest.mark.django_db
def test_the_log_in_page_is_open(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert b"Log in" in response.content
