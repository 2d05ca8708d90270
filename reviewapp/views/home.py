from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewapp.models import Job
from reviewapp.selectors.jobs import job_list_visible_to, job_targets
from reviewapp.selectors.reviews import worklist_for_reader
from reviewapp.selectors.studies import study_list, study_next_step
from reviewapp.selectors.users import user_is_admin, user_is_reviewer

#: Studies whose next step the dashboard works out (the newest).
DASHBOARD_STUDIES = 20


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: for admins what each study waits for and the jobs running now; the worklist for reviewers."""
    context = {}
    if user_is_admin(request.user):
        studies = study_list()
        active = list(
            job_list_visible_to(user=request.user)
            .filter(status__in=[Job.Status.PENDING, Job.Status.RUNNING])
            .order_by("created_at", "pk")[:20]
        )
        context["studies"] = studies
        context["next_steps"] = [study_next_step(study=study) for study in studies[:DASHBOARD_STUDIES]]
        targets = job_targets(jobs=active)
        context["active_jobs"] = [{"job": job, "target": targets.get(job.pk)} for job in active]
    if user_is_reviewer(request.user):
        context["entries"] = worklist_for_reader(reader=request.user)
    return render(request, "reviewapp/home.html", context)
