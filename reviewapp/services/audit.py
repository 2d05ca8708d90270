"""The audit trail: one call, one insert.

Views and services note what a person did with ``record(user, action, target, **detail)``::

    audit.record(request.user, AuditAction.VIEW_ITEM, item.case, review_set=set_pk, position=position)

``target`` is a model instance (stored as "<model>:<pk>", e.g. "case:12") or a short text. ``detail`` must
be JSON-serialisable. Rows are never changed or deleted (see :mod:`reviewapp.models.audit`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models

from reviewapp.models import AuditAction, AuditEvent

__all__ = ["AuditAction", "record", "target_name"]


def target_name(target: models.Model | str | None) -> str:
    """ "case:12" for a Case with pk 12; text as it is; "" for None."""
    if target is None:
        return ""
    if isinstance(target, models.Model):
        return f"{target._meta.model_name}:{target.pk}"
    return str(target)[:200]


def record(user: Any, action: str, target: models.Model | str | None = None, /, **detail: Any) -> AuditEvent:
    """Append one audit event for ``user`` (a user, a user id, or None for the system)."""
    if isinstance(user, AnonymousUser):
        user = None
    if user is None or isinstance(user, int):
        user_id, username = user, ""
    else:
        user_id, username = user.pk, user.get_username()
    return AuditEvent.objects.create(
        user_id=user_id, username=username, action=action, target=target_name(target), detail=detail
    )
