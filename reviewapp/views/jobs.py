from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp.selectors.jobs import (
    JOB_HISTORY_FILTERS,
    job_duration,
    job_history,
    job_list_visible_to,
    job_progress_payload,
    job_queue,
    job_targets,
)
from reviewapp.services.leases import leases_reap

JOBS_PER_PAGE = 50


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """Every background job one may see (admins: all), newest first, with what it works on and how it ended."""
    status = request.GET.get("status", "")
    if status not in JOB_HISTORY_FILTERS:
        status = ""
    page = Paginator(job_history(user=request.user, status=status), JOBS_PER_PAGE).get_page(
        request.GET.get("page") or 1
    )
    targets = job_targets(jobs=list(page))
    rows = [
        {
            "job": job,
            "target": targets.get(job.pk),
            "took": _took(job_duration(job=job)),
            "queue": job_queue(job=job),
        }
        for job in page
    ]
    context = {"page": page, "rows": rows, "status": status, "filters": [f for f in JOB_HISTORY_FILTERS if f]}
    return render(request, "reviewapp/jobs/list.html", context)


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min {seconds % 60} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


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
