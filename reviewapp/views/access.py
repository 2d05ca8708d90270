"""Who may open a view: decorators for the two roles (a page of the other role answers 403)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from reviewapp.selectors.users import user_is_admin, user_is_reviewer

View = Callable[..., HttpResponse]


def admin_required(view: View) -> View:
    """Admins only: studies, sweeps, review-set results, exports."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_is_admin(request.user):
            raise PermissionDenied("Only admins can open this page.")
        return view(request, *args, **kwargs)

    return wrapped


def reviewer_required(view: View) -> View:
    """Reviewers only: the worklist and the reading screen."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_is_reviewer(request.user):
            raise PermissionDenied("Only reviewers can open this page.")
        return view(request, *args, **kwargs)

    return wrapped
