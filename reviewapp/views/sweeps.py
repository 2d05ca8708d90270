"""Admin pages of sweeps: launch, live progress, the dimension table and a dimension's gallery."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.forms.sweeps import SweepForm
from reviewapp.models import AuditAction, Case, Study, Sweep
from reviewapp.selectors.studies import projected_heldout_cases
from reviewapp.selectors.sweeps import (
    borderline_dimensions,
    dimension_gallery,
    dimension_table,
    sweep_devices,
    sweep_dimension,
    sweep_planned_perturbations,
    sweep_rate_for_study,
    sweep_unit_counts,
    sweep_unit_progress,
)
from reviewapp.services import audit
from reviewapp.services.dimensions import GALLERY_IMAGES, dimension_queue_gallery
from reviewapp.services.sweeps import sweep_cancel, sweep_launch, sweep_resume
from reviewapp.views.access import admin_required


@admin_required
@require_http_methods(["GET", "POST"])
def sweep_new(request: HttpRequest, pk: int) -> HttpResponse:
    """The "Launch sweep" form, with the paper's defaults and every projected held-out case ticked."""
    study = get_object_or_404(Study, pk=pk)
    eligible = projected_heldout_cases(study=study)
    choices = Case.objects.filter(pk__in=[case.pk for case in eligible]).order_by("pk")
    form = SweepForm(request.POST or None, cases=choices, initial={"cases": eligible})
    if request.method == "POST" and form.is_valid():
        cases = list(form.cleaned_data["cases"])
        try:
            sweep = sweep_launch(study=study, cases=cases, created_by=request.user, **form.sweep_parameters())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("sweep", pk=sweep.pk)
    dims = study.style_dims or 0
    exact_perturbations = sweep_planned_perturbations(
        mode=Sweep.Mode.EXACT, images=len(eligible), dims=dims, screening_top_k=0
    )
    rate = sweep_rate_for_study(study=study)
    context = {
        "study": study,
        "form": form,
        "eligible": eligible,
        "exact_perturbations": exact_perturbations,
        "rate": rate,
        "estimate": _format_duration(exact_perturbations / rate.perturbations_per_second) if rate else "",
    }
    return render(request, "reviewapp/sweeps/new.html", context, status=400 if form.errors else 200)


def _format_duration(seconds: float) -> str:
    """ "40 s", "12 min", "2 h 05 min": the same words as static/js/sweep-estimate.js."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@admin_required
def sweep_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A sweep: live progress while it runs; the effect plot and the sortable dimension table when done."""
    sweep = get_object_or_404(Sweep.objects.select_related("study", "job"), pk=pk)
    sort = request.GET.get("sort", "rank")
    context = {
        "sweep": sweep,
        "study": sweep.study,
        "units": sweep_unit_counts(sweep=sweep),
        "sort": sort,
        "table": dimension_table(sweep=sweep, sort=sort, page=request.GET.get("page") or 1)
        if sweep.status == Sweep.Status.SUCCEEDED
        else None,
        "borderline": borderline_dimensions(sweep=sweep) if sweep.status == Sweep.Status.SUCCEEDED else None,
        "review_sets": sweep.review_sets.order_by("-created_at"),
        "took": _duration(sweep),
        "devices": sweep_devices(sweep=sweep),
    }
    return render(request, "reviewapp/sweeps/detail.html", context)


@admin_required
@never_cache
@require_GET
def sweep_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """The live figures of a sweep's page: units and perturbations done, the measured rate, seconds left."""
    sweep = get_object_or_404(Sweep.objects.select_related("job"), pk=pk)
    return JsonResponse(sweep_unit_progress(sweep=sweep))


def _duration(sweep: Sweep) -> str:
    if not (sweep.started_at and sweep.finished_at):
        return ""
    seconds = round((sweep.finished_at - sweep.started_at).total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


@admin_required
@require_POST
def sweep_stop(request: HttpRequest, pk: int) -> HttpResponse:
    sweep = get_object_or_404(Sweep.objects.select_related("job"), pk=pk)
    sweep_cancel(sweep=sweep)
    audit.record(request.user, AuditAction.CANCEL_JOB, sweep.job or sweep, kind="sweep", sweep=sweep.pk)
    messages.info(
        request, "The sweep stops after the units in progress; finished units are kept and it can be resumed."
    )
    return redirect("sweep", pk=sweep.pk)


@admin_required
@require_POST
def sweep_continue(request: HttpRequest, pk: int) -> HttpResponse:
    """Resume a cancelled sweep: its finished units are kept, the rest run on a new job."""
    sweep = get_object_or_404(Sweep, pk=pk)
    try:
        sweep_resume(sweep=sweep, created_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.info(request, "The sweep resumes with the units that were not finished.")
    return redirect("sweep", pk=sweep.pk)


@admin_required
def dimension_detail(request: HttpRequest, pk: int, dim: int) -> HttpResponse:
    """One dimension: its statistics, where in the chest it acts, and its top images."""
    sweep = get_object_or_404(Sweep.objects.select_related("study"), pk=pk)
    dimension = sweep_dimension(sweep=sweep, dim=dim)
    if dimension is None:
        raise Http404("The sweep has no such dimension.")
    context = {
        "sweep": sweep,
        "study": sweep.study,
        "dimension": dimension,
        "gallery": dimension_gallery(dimension=dimension, count=GALLERY_IMAGES),
        "gallery_size": GALLERY_IMAGES,
    }
    return render(request, "reviewapp/sweeps/dimension.html", context)


@admin_required
@require_POST
def dimension_render(request: HttpRequest, pk: int, dim: int) -> HttpResponse:
    sweep = get_object_or_404(Sweep, pk=pk, status=Sweep.Status.SUCCEEDED)
    dimension = sweep_dimension(sweep=sweep, dim=dim)
    if dimension is None:
        raise Http404("The sweep has no such dimension.")
    dimension_queue_gallery(dimension=dimension, created_by=request.user)
    return redirect("sweep-dimension", pk=sweep.pk, dim=dim)
