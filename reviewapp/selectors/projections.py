"""Reads of projections."""

from __future__ import annotations

from collections.abc import Sequence

from reviewapp.models import Case, Projection


def latest_projections(*, cases: Sequence[Case]) -> dict[int, Projection]:
    """Case pk -> its newest succeeded projection, for the cases that have one."""
    latest: dict[int, Projection] = {}
    rows = Projection.objects.filter(
        case__in=[case.pk for case in cases], status=Projection.Status.SUCCEEDED
    ).order_by("case_id", "-created_at", "-pk")
    for projection in rows:
        latest.setdefault(projection.case_id, projection)
    return latest
