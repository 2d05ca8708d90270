"""Reads of projections."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from reviewapp.models import Case, Job, Projection

#: Projections that will not finish: failed, or pending behind a job that ended (cancelled before it ran).
STALLED = Q(status=Projection.Status.FAILED) | Q(
    status=Projection.Status.PENDING, job__status__in=list(Job.FINISHED_STATUSES)
)


def latest_projections(*, cases: Sequence[Case]) -> dict[int, Projection]:
    """Case pk -> its newest succeeded projection, for the cases that have one."""
    latest: dict[int, Projection] = {}
    rows = Projection.objects.filter(
        case__in=[case.pk for case in cases], status=Projection.Status.SUCCEEDED
    ).order_by("case_id", "-created_at", "-pk")
    for projection in rows:
        latest.setdefault(projection.case_id, projection)
    return latest


def stalled_case_ids(*, cases) -> set[int]:
    """Cases whose newest projection is stalled (see STALLED)."""
    newest: dict[int, int] = {}
    for case_id, pk in (
        Projection.objects.filter(case__in=cases)
        .order_by("case_id", "-created_at", "-pk")
        .values_list("case_id", "pk")
    ):
        newest.setdefault(case_id, pk)
    return set(Projection.objects.filter(STALLED, pk__in=newest.values()).values_list("case_id", flat=True))
