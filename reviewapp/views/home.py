from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewapp.selectors.reviews import worklist_for_reader
from reviewapp.selectors.studies import study_list
from reviewapp.selectors.users import user_is_admin, user_is_reviewer


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: studies for admins, the worklist for reviewers."""
    context = {}
    if user_is_admin(request.user):
        context["studies"] = study_list()
    if user_is_reviewer(request.user):
        context["entries"] = worklist_for_reader(reader=request.user)
    return render(request, "reviewapp/home.html", context)
