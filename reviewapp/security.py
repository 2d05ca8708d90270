"""Content-Security-Policy: a header on every response, with a fresh nonce per request.

The policy is ``settings.CONTENT_SECURITY_POLICY`` (directive -> sources); the source ``'nonce'`` stands for
this request's nonce, which templates put on the rare inline ``<script>`` or ``<style>`` they need
(``nonce="{{ request.csp_nonce }}"``). A view may widen the policy of its own responses with
``csp_allow_inline_styles`` (for third-party pages that write styles at run time).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


def policy_text(directives: dict[str, list[str]], *, nonce: str, inline_styles: bool = False) -> str:
    parts = []
    for name, sources in directives.items():
        values = [f"'nonce-{nonce}'" if source == "'nonce'" else source for source in sources]
        if inline_styles and name == "style-src":
            # A nonce would make browsers ignore 'unsafe-inline'.
            values = [value for value in values if not value.startswith("'nonce-")] + ["'unsafe-inline'"]
        parts.append(" ".join([name, *values]))
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        header = REPORT_ONLY_HEADER if settings.CONTENT_SECURITY_POLICY_REPORT_ONLY else HEADER
        if header not in response:
            response[header] = policy_text(
                settings.CONTENT_SECURITY_POLICY,
                nonce=nonce,
                inline_styles=getattr(response, "csp_allow_inline_styles", False),
            )
        return response


def csp_allow_inline_styles(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Lets the view's pages use inline styles (scripts stay strict)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.csp_allow_inline_styles = True  # type: ignore[attr-defined]
        return response

    return wrapped
