"""Admin pages of the Counterfactual lab: launch runs on a study's cases, follow one, compare several, and add
a finished run to a review set."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.forms.lab import AddToReviewSetForm, LabRunForm
from reviewapp.inputs import query_int, query_ints
from reviewapp.models import AuditAction, LabRun, Study
from reviewapp.selectors.lab import (
    lab_changed_styles,
    lab_metric_rows,
    lab_review_sets_for,
    lab_run_items,
    lab_runs_of_study,
    lab_runs_to_compare,
)
from reviewapp.services import audit
from reviewapp.services.lab import lab_run_add_to_review_set, lab_run_cancel, lab_run_create
from reviewapp.views.access import admin_required


@admin_required
@require_http_methods(["GET", "POST"])
def lab(request: HttpRequest, pk: int) -> HttpResponse:
    """The lab of a study: the launch form and the study's runs."""
    study = get_object_or_404(Study, pk=pk)
    initial = {"case": request.GET.get("case"), "method": request.GET.get("method") or "gci"}
    form = LabRunForm(request.POST or None, study=study, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = lab_run_create(
                study=study,
                case=data["case"],
                method=data["method"],
                target=data["target"] or None,
                parameters=form.parameters(),
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("lab-run", pk=run.pk)
    context = {"study": study, "form": form, "runs": lab_runs_of_study(study=study)}
    return render(request, "reviewapp/lab/lab.html", context, status=400 if form.errors else 200)


def _run(pk: int) -> LabRun:
    return get_object_or_404(LabRun.objects.select_related("study", "case", "job", "created_by"), pk=pk)


def _run_page(request: HttpRequest, run: LabRun, add_form: AddToReviewSetForm, *, status: int = 200):
    context = {
        "run": run,
        "study": run.study,
        "metrics": lab_metric_rows(runs=[run]),
        "changed_styles": lab_changed_styles(run=run),
        "items": lab_run_items(run=run),
        "add_form": add_form,
    }
    return render(request, "reviewapp/lab/run.html", context, status=status)


@admin_required
@require_GET
def lab_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: live progress while it runs; its images, path GIF, metrics and findings when done."""
    run = _run(pk)
    return _run_page(request, run, AddToReviewSetForm(review_sets=lab_review_sets_for(run=run)))


@admin_required
@require_POST
def lab_run_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Append the run to one of the study's review sets as its next item."""
    run = _run(pk)
    form = AddToReviewSetForm(request.POST, review_sets=lab_review_sets_for(run=run))
    status = 400
    if form.is_valid():
        review_set = form.cleaned_data["review_set"]
        try:
            item = lab_run_add_to_review_set(run=run, review_set=review_set)
        except ValidationError as error:
            form.add_error(None, error)
            status = 409 if error.code == "conflict" else 400
        else:
            messages.success(request, f"Added as item {item.position} of {review_set.name}.")
            return redirect("lab-run", pk=run.pk)
    return _run_page(request, run, form, status=status)


@admin_required
@require_POST
def lab_run_stop(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    lab_run_cancel(run=run)
    audit.record(request.user, AuditAction.CANCEL_JOB, run.job or run, kind="lab", lab_run=run.pk)
    messages.info(request, "The run stops at the method's next step.")
    return redirect("lab-run", pk=run.pk)


@admin_required
@require_GET
def lab_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Runs side by side: ``?run=1&run=2`` (chosen runs) or ``?case=7`` (every run of one case)."""
    study = get_object_or_404(Study, pk=pk)
    run_ids = query_ints(request.GET, "run")
    case_id = query_int(request.GET, "case")
    runs = lab_runs_to_compare(study=study, run_ids=run_ids, case_id=None if run_ids else case_id)
    context = {"study": study, "runs": runs, "metrics": lab_metric_rows(runs=runs)}
    return render(request, "reviewapp/lab/compare.html", context)
