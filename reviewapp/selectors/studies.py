"""Reads of the admin side: studies, their cases, projections, jobs, sweeps and review sets."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from reviewapp.models import Case, Job, LabRun, Projection, ReviewSet, Study, Sweep
from reviewapp.selectors.projections import latest_projections, stalled_case_ids


def study_list() -> QuerySet[Study]:
    """Every study with its number of cases, sweeps and review sets, newest first."""
    return Study.objects.annotate(
        num_cases=Count("cases", distinct=True),
        num_sweeps=Count("sweeps", distinct=True),
        num_review_sets=Count("review_sets", distinct=True),
    ).order_by("-created_at", "-pk")


@dataclass(frozen=True)
class StudyCounts:
    heldout: int
    review: int
    projected: int
    projecting: int
    failed: int

    @property
    def total(self) -> int:
        return self.heldout + self.review


def study_counts(*, study: Study) -> StudyCounts:
    """How many cases of each split there are and where their projections stand (latest per case)."""
    splits = dict(study.cases.values_list("split").annotate(n=Count("pk")).values_list("split", "n"))
    latest_status = {}
    for case_id, status in (
        Projection.objects.filter(case__study=study).order_by("case_id", "-created_at", "-pk")
    ).values_list("case_id", "status"):
        latest_status.setdefault(case_id, status)
    stalled = len(stalled_case_ids(cases=study.cases.all()))
    statuses = list(latest_status.values())
    pending = statuses.count(Projection.Status.PENDING)
    failed = statuses.count(Projection.Status.FAILED)
    return StudyCounts(
        heldout=splits.get(Case.Split.HELDOUT, 0),
        review=splits.get(Case.Split.REVIEW, 0),
        projected=statuses.count(Projection.Status.SUCCEEDED),
        projecting=pending - (stalled - failed),
        failed=stalled,
    )


def study_active_jobs(*, study: Study) -> QuerySet[Job]:
    """Unfinished jobs of the study: its style ranges, projection batches, sweeps, review sets and lab runs."""
    ids = set(
        Projection.objects.filter(case__study=study, job__isnull=False).values_list("job_id", flat=True)
    )
    ids |= set(Sweep.objects.filter(study=study, job__isnull=False).values_list("job_id", flat=True))
    ids |= set(ReviewSet.objects.filter(study=study, job__isnull=False).values_list("job_id", flat=True))
    ids |= set(LabRun.objects.filter(study=study, job__isnull=False).values_list("job_id", flat=True))
    if study.ranges_job_id:
        ids.add(study.ranges_job_id)
    return Job.objects.filter(pk__in=ids, status__in=[Job.Status.PENDING, Job.Status.RUNNING]).order_by("pk")


@dataclass(frozen=True)
class CaseRow:
    case: Case
    projection: Projection | None
    pending: bool


def study_cases(*, study: Study, split: str | None = None) -> QuerySet[Case]:
    cases = study.cases.order_by("pk")
    return cases.filter(split=split) if split else cases


def case_rows(*, cases: list[Case]) -> list[CaseRow]:
    """Cases with their latest finished projection (fidelity and probabilities) and whether one is queued."""
    latest = latest_projections(cases=cases)
    pending = set(
        Projection.objects.filter(case__in=cases, status=Projection.Status.PENDING)
        .exclude(job__status__in=list(Job.FINISHED_STATUSES))
        .values_list("case_id", flat=True)
    )
    return [CaseRow(case=c, projection=latest.get(c.pk), pending=c.pk in pending) for c in cases]


def study_sweeps(*, study: Study) -> QuerySet[Sweep]:
    return study.sweeps.select_related("job", "created_by").order_by("-created_at", "-pk")


def study_review_sets(*, study: Study) -> QuerySet[ReviewSet]:
    return (
        study.review_sets.select_related("sweep", "job")
        .annotate(
            num_items=Count("items", distinct=True),
            num_readers=Count("assignments", distinct=True),
            num_finalised=Count(
                "assignments", filter=Q(assignments__finalised_at__isnull=False), distinct=True
            ),
        )
        .order_by("-created_at", "-pk")
    )


def projected_heldout_cases(*, study: Study) -> list[Case]:
    """Held-out cases with a finished projection: what a sweep can run on."""
    cases = list(study.cases.filter(split=Case.Split.HELDOUT).order_by("pk"))
    latest = latest_projections(cases=cases)
    return [case for case in cases if case.pk in latest]
