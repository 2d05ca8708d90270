from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.selectors.jobs import job_list_visible_to, job_progress_payload


@never_cache
@require_GET
def job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """A job's status, progress (0..1), message and estimated seconds left, for pages that poll."""
    job = get_object_or_404(job_list_visible_to(user=request.user), pk=pk)
    return JsonResponse(job_progress_payload(job=job))
