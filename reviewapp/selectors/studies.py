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


@dataclass(frozen=True)
class NextStep:
    """What an admin should do next on a study: a sentence, and the page (URL name and pk) to do it on."""

    study: Study
    text: str
    url_name: str
    pk: int
    action: str


def study_next_step(*, study: Study) -> NextStep:
    """The first thing the study waits for, in the order of the pipeline."""

    def step(text: str, url_name: str, pk: int, action: str) -> NextStep:
        return NextStep(study=study, text=text, url_name=url_name, pk=pk, action=action)

    counts = study_counts(study=study)
    if not study.has_ranges:
        return step("Its style ranges are being estimated.", "study", study.pk, "Open study")
    if counts.total == 0:
        return step("It has no cases yet.", "study", study.pk, "Upload cases")
    if counts.failed:
        return step(f"{counts.failed} projection(s) failed.", "study", study.pk, "Retry projections")
    if counts.projected == 0:
        return step("Its cases are being projected.", "study", study.pk, "Open study")
    sweep = study.sweeps.order_by("-created_at", "-pk").first()
    if sweep is None:
        return step(
            f"{counts.projected} case(s) are projected; no sweep yet.", "sweep-new", study.pk, "Launch sweep"
        )
    if sweep.status in (Sweep.Status.PENDING, Sweep.Status.RUNNING, Sweep.Status.FINALISING):
        return step(f"Sweep {sweep.pk} is running.", "sweep", sweep.pk, "Watch sweep")
    if sweep.status == Sweep.Status.CANCELLED:
        return step(f"Sweep {sweep.pk} was cancelled.", "sweep", sweep.pk, "Resume sweep")
    if sweep.status == Sweep.Status.FAILED:
        return step(f"Sweep {sweep.pk} failed.", "sweep", sweep.pk, "See the error")
    review_set = study_review_sets(study=study).filter(sweep=sweep).first()
    if review_set is None:
        return step(
            f"Sweep {sweep.pk} selected {sweep.num_selected or 0} dimension(s).",
            "review-set-new",
            sweep.pk,
            "Create review set",
        )
    if review_set.status == ReviewSet.Status.RENDERING:
        return step(
            f"Review set “{review_set.name}” is rendering.", "curation-review-set", review_set.pk, "Open"
        )
    if review_set.status == ReviewSet.Status.FAILED:
        return step(
            f"Review set “{review_set.name}” failed.", "curation-review-set", review_set.pk, "See the error"
        )
    if review_set.num_readers == 0:
        return step(
            f"Review set “{review_set.name}” has no readers.",
            "curation-review-set",
            review_set.pk,
            "Assign readers",
        )
    if review_set.num_finalised < review_set.num_readers:
        return step(
            f"{review_set.num_finalised} of {review_set.num_readers} reader(s) have finished "
            f"“{review_set.name}”.",
            "review-set-results",
            review_set.pk,
            "Results so far",
        )
    return step(f"Every reader finished “{review_set.name}”.", "review-set-results", review_set.pk, "Results")
