from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.health import health_check


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the broker and a worker are reachable, 503 otherwise."""
    health = health_check()
    payload = {"status": "ok" if health.ok else "unavailable", **health.as_dict()}
    return JsonResponse(payload, status=200 if health.ok else 503)
