"""Admin pages of studies and their cases."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviewapp.forms.studies import CaseUploadForm, StudyForm
from reviewapp.models import Job, Study
from reviewapp.selectors.studies import (
    case_rows,
    study_active_jobs,
    study_cases,
    study_counts,
    study_review_sets,
    study_sweeps,
)
from reviewapp.services.cases import (
    case_import_files,
    case_incoming_upload,
    case_labels_from_upload,
)
from reviewapp.services.projections import projection_retry_failed
from reviewapp.services.studies import (
    study_check_classifier_source,
    study_check_server_path,
    study_create,
    study_discard_uploads,
    study_queue_ranges,
    study_store_upload,
)
from reviewapp.views.access import admin_required

CASES_PER_PAGE = 40


@admin_required
@require_http_methods(["GET", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    """Register a study from uploaded checkpoints or files already on the server; its models must load."""
    form = StudyForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        stored: list[str] = []
        try:
            study = study_create(created_by=request.user, **_study_arguments(form.cleaned_data, stored))
        except ValidationError as error:
            study_discard_uploads(names=stored)
            form.add_error(None, error)
        except BaseException:
            study_discard_uploads(names=stored)
            raise
        else:
            messages.success(request, f"Study {study.name} registered; its style ranges are being estimated.")
            return redirect("study", pk=study.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "reviewapp/studies/new.html", {"form": form}, status=status)


def _study_arguments(data: dict, stored: list[str]) -> dict:
    """Service arguments from the form; uploads are stored first (their names are added to ``stored``)."""

    def model_path(role: str, upload, path: str) -> str:
        if upload:
            stored.append(study_store_upload(upload=upload, role=role))
            return stored[-1]
        return study_check_server_path(path=path, role=role) if path else ""

    classifier = data["classifier_source"].strip()
    if data["classifier_file"]:
        classifier = model_path("classifier", data["classifier_file"], "")
    else:
        classifier = study_check_classifier_source(source=classifier)
    return {
        "name": data["name"].strip(),
        "target_label": data["target_label"].strip(),
        "generator_path": model_path("generator", data["generator_file"], data["generator_path"].strip()),
        "discriminator_path": model_path(
            "discriminator", data["discriminator_file"], data["discriminator_path"].strip()
        ),
        "classifier_source": classifier,
        "classifier_kind": data["classifier_kind"],
        "classifier_options": {"arch": data["classifier_arch"].strip()},
        "autoencoder_path": model_path("autoencoder", None, data["autoencoder_path"].strip()),
        "projection_steps": data["projection_steps"],
        "projection_batch_size": data["projection_batch_size"],
        "ranges_samples": data["ranges_samples"],
        "notes": data["notes"],
    }


@admin_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A study: its models, cases with their projections, jobs in progress, sweeps and review sets."""
    study = get_object_or_404(Study, pk=pk)
    split = request.GET.get("split") or None
    page = Paginator(study_cases(study=study, split=split), CASES_PER_PAGE).get_page(request.GET.get("page"))
    jobs = list(study_active_jobs(study=study))
    context = {
        "study": study,
        "counts": study_counts(study=study),
        "running_jobs": [job for job in jobs if job.status == Job.Status.RUNNING],
        "waiting_jobs": [job for job in jobs if job.status == Job.Status.PENDING],
        "generator_name": Path(study.generator_path).name,
        "case_rows": case_rows(cases=list(page.object_list)),
        "page": page,
        "split": split or "",
        "sweeps": study_sweeps(study=study),
        "review_sets": study_review_sets(study=study),
        "upload_form": CaseUploadForm(),
    }
    return render(request, "reviewapp/studies/detail.html", context)


@admin_required
@require_POST
def case_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Import many files at once; unreadable ones are listed with the reason and nothing of them is kept."""
    study = get_object_or_404(Study, pk=pk)
    form = CaseUploadForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        try:
            labels_file = form.cleaned_data["labels_csv"]
            labels = case_labels_from_upload(labels_file) if labels_file else None
            report = case_import_files(
                study=study,
                files=[case_incoming_upload(upload) for upload in form.cleaned_data["files"]],
                split=form.cleaned_data["split"],
                labels=labels,
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
    ok = report is not None and bool(report.imported)
    if ok and not report.skipped:
        messages.success(request, f"Imported {len(report.imported)} case(s); their projections are queued.")
        return redirect("study", pk=study.pk)
    context = {"study": study, "form": form, "report": report}
    return render(request, "reviewapp/studies/import_report.html", context, status=200 if ok else 400)


@admin_required
@require_POST
def study_retry_projections(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    jobs = projection_retry_failed(study=study, created_by=request.user)
    messages.info(request, f"Queued {len(jobs)} projection job(s) for the failed cases.")
    return redirect("study", pk=study.pk)


@admin_required
@require_POST
def study_reestimate_ranges(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    study_queue_ranges(study=study, created_by=request.user)
    messages.info(request, "The style ranges are being estimated again.")
    return redirect("study", pk=study.pk)
