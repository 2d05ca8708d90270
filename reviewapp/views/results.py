"""Admin pages of the review results: agreement of several readers, the factor catalogue, CSV exports."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from reviewapp.agreement import MIN_KAPPA_ITEMS
from reviewapp.forms.audit import AuditFilterForm
from reviewapp.models import AuditAction, ReviewSet, Study, Sweep
from reviewapp.selectors import exports
from reviewapp.selectors.agreement import review_set_agreement, review_set_arms, review_set_summary
from reviewapp.selectors.reviews import review_set_progress
from reviewapp.services import audit
from reviewapp.views.access import admin_required


class _Echo:
    """A file-like object whose ``write`` hands the line back, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """CSV lines of ``header`` and ``rows``, every cell made safe for spreadsheets (exports.csv_cell)."""
    writer = csv.writer(_Echo())
    cell = exports.csv_cell
    yield writer.writerow([cell(value) for value in header])
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


def csv_stream(filename: str, header: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    """A streamed CSV download: rows are written as they are read, in constant memory."""
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@admin_required
@require_GET
def review_set_results(request: HttpRequest, pk: int) -> HttpResponse:
    """Readers' progress, agreement per question and the per-dimension verdicts of one review set."""
    review_set = get_object_or_404(ReviewSet.objects.select_related("study", "sweep"), pk=pk)
    context = {
        "review_set": review_set,
        "progress": review_set_progress(review_set=review_set),
        "agreement": review_set_agreement(review_set=review_set),
        "summary": review_set_summary(review_set=review_set),
        "arms": review_set_arms(review_set=review_set),
        "min_kappa_items": MIN_KAPPA_ITEMS,
    }
    return render(request, "reviewapp/results/review_set.html", context)


@admin_required
@require_GET
def export_reviews(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The review table (papers/003 Appendix A Table 1 and more); ``?drafts=1`` includes drafts."""
    review_set = get_object_or_404(ReviewSet, pk=pk)
    drafts = request.GET.get("drafts") == "1"
    audit.record(request.user, AuditAction.EXPORT, review_set, table="reviews", drafts=drafts)
    rows = exports.review_table_rows(review_set=review_set, include_drafts=drafts)
    return csv_stream(
        f"reviews-{slugify(review_set.name) or review_set.pk}.csv",
        exports.header(exports.REVIEW_COLUMNS),
        rows,
    )


@admin_required
@require_GET
def export_agreement(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Agreement per question; ``?table=dimensions`` gives the per-dimension verdicts instead."""
    review_set = get_object_or_404(ReviewSet, pk=pk)
    name = slugify(review_set.name) or review_set.pk
    table = "dimension-verdicts" if request.GET.get("table") == "dimensions" else "agreement"
    audit.record(request.user, AuditAction.EXPORT, review_set, table=table)
    if request.GET.get("table") == "dimensions":
        header = exports.header(exports.SUMMARY_COLUMNS)
        return csv_stream(
            f"dimension-verdicts-{name}.csv", header, exports.summary_rows(review_set=review_set)
        )
    header = exports.header(exports.AGREEMENT_COLUMNS)
    return csv_stream(f"agreement-{name}.csv", header, exports.agreement_rows(review_set=review_set))


@admin_required
@require_GET
def export_dimensions(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The sweep's dimension table, strongest effect first."""
    sweep = get_object_or_404(Sweep, pk=pk)
    audit.record(request.user, AuditAction.EXPORT, sweep, table="dimensions")
    header = exports.header(exports.DIMENSION_COLUMNS)
    return csv_stream(f"sweep-{sweep.pk}-dimensions.csv", header, exports.dimension_table_rows(sweep=sweep))


@admin_required
@require_GET
def factor_catalogue(request: HttpRequest, pk: int) -> HttpResponse:
    """Every reviewed dimension of a study with its readers' names, majority verdicts and example stacks."""
    study = get_object_or_404(Study, pk=pk)
    entries = exports.factor_catalogue(study=study)
    return render(request, "reviewapp/results/factor_catalogue.html", {"study": study, "entries": entries})


@admin_required
@require_GET
def export_factor_catalogue(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    study = get_object_or_404(Study, pk=pk)
    audit.record(request.user, AuditAction.EXPORT, study, table="factors")
    header = exports.header(exports.FACTOR_COLUMNS)
    name = slugify(study.name) or study.pk
    return csv_stream(f"factors-{name}.csv", header, exports.factor_catalogue_rows(study=study))


@admin_required
@require_GET
def export_audit(request: HttpRequest) -> HttpResponse:
    """The audit trail as CSV, oldest first; ``?user=&action=&target=&since=&until=`` narrow it."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    filters = form.filters()
    audit.record(request.user, AuditAction.EXPORT, "audit", **{k: str(v) for k, v in filters.items() if v})
    header = exports.header(exports.AUDIT_COLUMNS)
    return csv_stream("audit-trail.csv", header, exports.audit_rows(**filters))
