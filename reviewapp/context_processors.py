from __future__ import annotations

from django.http import HttpRequest

from reviewapp.selectors.users import user_is_admin, user_is_reviewer


def roles(request: HttpRequest) -> dict[str, bool]:
    """``is_admin`` and ``is_reviewer`` for templates (the navigation depends on them)."""
    user = getattr(request, "user", None)
    if user is None:
        return {"is_admin": False, "is_reviewer": False}
    return {"is_admin": user_is_admin(user), "is_reviewer": user_is_reviewer(user)}
