from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: studies for admins, the worklist for reviewers."""
    return render(request, "reviewapp/home.html")
