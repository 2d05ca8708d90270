from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.selectors.jobs import job_list_visible_to, job_progress_payload
from reviewapp.services.leases import leases_reap


@never_cache
@require_GET
def job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """A job's status, progress (0..1), message and estimated seconds left, for pages that poll.

    A running job whose worker was lost is reclaimed here too (its work sent again, or the job failed or
    cancelled), so a page watching it never waits on a dead worker longer than the lease time.
    """
    job = get_object_or_404(job_list_visible_to(user=request.user), pk=pk)
    if job.status == job.Status.RUNNING and leases_reap(job=job):
        job.refresh_from_db()
    return JsonResponse(job_progress_payload(job=job))
