"""Who may use which part of the API: admins everything (read-only on others' answers), reviewers only the
review sets assigned to them and their own answers."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from reviewapp.selectors.users import user_is_admin, user_is_reviewer


class IsAdmin(BasePermission):
    message = "Only admins can use this endpoint."

    def has_permission(self, request, view) -> bool:
        return user_is_admin(request.user)


class IsAdminOrReviewer(BasePermission):
    message = "Only admins and reviewers can use this endpoint."

    def has_permission(self, request, view) -> bool:
        return user_is_admin(request.user) or user_is_reviewer(request.user)
