"""The reviewer side: worklist, set overview, the reading screen with its protocol form, factor names."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.forms.reviews import AnnotationForm, FactorAnnotationForm
from reviewapp.inputs import DB_INT_MAX, parse_int
from reviewapp.models import ReviewAssignment, ReviewItem
from reviewapp.selectors import reviews as selectors
from reviewapp.services.annotations import (
    annotation_save_draft,
    annotation_submit,
    assignment_finalise,
    factor_annotation_save,
)
from reviewapp.views.access import reviewer_required
from reviewapp.views.media import private_file_response

IMAGE_KINDS = ("original", "reconstruction", "perturbed", "difference", "flicker", "stack")


def _assignment(request: HttpRequest, set_pk: int) -> ReviewAssignment:
    """The signed-in reader's own assignment to the set; 404 for sets not assigned to them."""
    return get_object_or_404(selectors.assignment_list_for_reader(reader=request.user), review_set_id=set_pk)


def _item(assignment: ReviewAssignment, position: int) -> ReviewItem:
    item = selectors.reader_item_at(assignment=assignment, position=position)
    if item is None:
        raise Http404("No such item in this review set.")
    return item


def _error_messages(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {field: [m for e in errors for m in e.messages] for field, errors in error.error_dict.items()}
    return {"__all__": error.messages}


@reviewer_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    """The reader's review sets with their progress."""
    entries = selectors.worklist_for_reader(reader=request.user)
    return render(request, "reviewapp/reviews/worklist.html", {"entries": entries})


@reviewer_required
@require_GET
def review_set_overview(request: HttpRequest, set_pk: int) -> HttpResponse:
    """Progress on one set: every item's state, the factors to name, and finalising."""
    assignment = _assignment(request, set_pk)
    ids = selectors.reader_item_ids(assignment=assignment)
    annotations = selectors.reader_annotations(assignment=assignment)
    items = [(position, annotations.get(item_id)) for position, item_id in enumerate(ids, start=1)]
    groups = selectors.reader_factor_groups(assignment=assignment)
    answered = sum(1 for _, a in items if a is not None and not a.is_draft)
    context = {
        "assignment": assignment,
        "review_set": assignment.review_set,
        "items": items,
        "groups": groups,
        "answered": answered,
        "total": len(ids),
        "resume": selectors.reader_resume_position(assignment=assignment),
    }
    return render(request, "reviewapp/reviews/overview.html", context)


@reviewer_required
@require_GET
def review_set_resume(request: HttpRequest, set_pk: int) -> HttpResponse:
    """Continue where the reader stopped: their first item without a submitted answer."""
    assignment = _assignment(request, set_pk)
    position = selectors.reader_resume_position(assignment=assignment)
    if position is None:
        return redirect("review-set", set_pk=set_pk)
    return redirect("review-item", set_pk=set_pk, position=position)


def _reading_context(assignment: ReviewAssignment, item: ReviewItem, position: int, form: AnnotationForm):
    set_pk = assignment.review_set_id
    total = len(selectors.reader_item_ids(assignment=assignment))
    annotation = selectors.reader_annotation(assignment=assignment, item=item)

    def image_urls(at: int) -> dict[str, str]:
        return {
            kind: reverse("review-item-image", kwargs={"set_pk": set_pk, "position": at, "kind": kind})
            for kind in IMAGE_KINDS
        }

    next_position = position + 1 if position < total else None
    group = selectors.reader_factor_group_of(assignment=assignment, item=item)
    return {
        "assignment": assignment,
        "review_set": assignment.review_set,
        "target": item.review_set.study.target_label.lower(),
        "item": item,
        "position": position,
        "total": total,
        "answered": sum(
            1 for a in selectors.reader_annotations(assignment=assignment).values() if not a.is_draft
        ),
        "annotation": annotation,
        "display": selectors.item_display(assignment=assignment, item=item),
        "group": group,
        "form": form,
        "finalised": assignment.finalised_at is not None,
        "previous_position": position - 1 if position > 1 else None,
        "next_position": next_position,
        "viewer_config": {
            "images": image_urls(position),
            "preload": image_urls(next_position) if next_position else {},
            "autosaveUrl": reverse("review-item-autosave", kwargs={"set_pk": set_pk, "position": position}),
            "previousUrl": reverse("review-item", kwargs={"set_pk": set_pk, "position": position - 1})
            if position > 1
            else None,
            "nextUrl": reverse("review-item", kwargs={"set_pk": set_pk, "position": next_position})
            if next_position
            else None,
            "finalised": assignment.finalised_at is not None,
        },
    }


@never_cache
@reviewer_required
@require_http_methods(["GET", "POST"])
def item_read(request: HttpRequest, set_pk: int, position: int) -> HttpResponse:
    """The reading screen; POST submits the answers and moves on to the next unanswered item."""
    assignment = _assignment(request, set_pk)
    item = _item(assignment, position)
    if request.method == "GET":
        initial = AnnotationForm.initial_from(selectors.reader_annotation(assignment=assignment, item=item))
        form = AnnotationForm(initial=initial)
        return render(
            request, "reviewapp/reviews/read.html", _reading_context(assignment, item, position, form)
        )

    form = AnnotationForm(request.POST)
    if form.is_valid():
        try:
            annotation_submit(
                assignment=assignment, item=item, answers=form.answers(), seconds=form.seconds_spent()
            )
        except ValidationError as error:
            for field, errors in _error_messages(error).items():
                for message in errors:
                    form.add_error(None if field == "__all__" else field, message)
        else:
            return redirect(_after_submit(assignment, item, position))
    context = _reading_context(assignment, item, position, form)
    return render(
        request, "reviewapp/reviews/read.html", context, status=409 if context["finalised"] else 400
    )


def _after_submit(assignment: ReviewAssignment, item: ReviewItem, position: int) -> str:
    """Name the factor once its last item is answered; otherwise the next unanswered item, or the overview."""
    group = selectors.reader_factor_group_of(assignment=assignment, item=item)
    set_pk = assignment.review_set_id
    if group is not None and group.complete and not group.named:
        return (
            reverse("review-factor", kwargs={"set_pk": set_pk, "number": group.number}) + f"?after={position}"
        )
    following = selectors.reader_next_position(assignment=assignment, after=position)
    if following is None:
        return reverse("review-set", kwargs={"set_pk": set_pk})
    return reverse("review-item", kwargs={"set_pk": set_pk, "position": following})


@reviewer_required
@require_POST
def item_autosave(request: HttpRequest, set_pk: int, position: int) -> JsonResponse:
    """Store the answers as a draft (the reading screen calls it as the reader types); JSON in reply."""
    assignment = _assignment(request, set_pk)
    item = _item(assignment, position)
    form = AnnotationForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"saved": False, "errors": form.errors.get_json_data()}, status=400)
    try:
        annotation = annotation_save_draft(
            assignment=assignment, item=item, answers=form.answers(), seconds=form.seconds_spent()
        )
    except ValidationError as error:
        status = 409 if getattr(error, "code", None) == "finalised" else 400
        return JsonResponse({"saved": False, "errors": _error_messages(error)}, status=status)
    return JsonResponse(
        {
            "saved": True,
            "status": "draft" if annotation.is_draft else "submitted",
            "updated_at": annotation.updated_at.isoformat(),
            "time_spent_seconds": annotation.time_spent_seconds,
        }
    )


@reviewer_required
@require_GET
def item_image(request: HttpRequest, set_pk: int, position: int, kind: str) -> HttpResponse:
    """One image of the reader's item at ``position``; the URL names neither the dimension nor the case."""
    if kind not in IMAGE_KINDS:
        raise Http404("No such image.")
    item = _item(_assignment(request, set_pk), position)
    return private_file_response(request, item.images()[kind].name)


@never_cache
@reviewer_required
@require_http_methods(["GET", "POST"])
def factor_annotate(request: HttpRequest, set_pk: int, number: int) -> HttpResponse:
    """Name one factor (style dimension) and rate its relevance, with the reader's items of it beside."""
    assignment = _assignment(request, set_pk)
    groups = selectors.reader_factor_groups(assignment=assignment)
    if not 1 <= number <= len(groups):
        raise Http404("No such factor in this review set.")
    group = groups[number - 1]
    after = request.GET.get("after", "")
    status = 200
    if request.method == "POST":
        form = FactorAnnotationForm(request.POST)
        if form.is_valid():
            try:
                factor_annotation_save(assignment=assignment, dimension=group.dimension, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in _error_messages(error).items():
                    for message in errors:
                        form.add_error(None if field == "__all__" else field, message)
            else:
                messages.success(request, f"{group.label} saved.")
                return redirect(_after_factor(assignment, after))
        status = 400
    else:
        factor = group.factor
        initial = {}
        if factor is not None:
            initial = {
                "factor_name": factor.factor_name,
                "clinical_relevance": factor.clinical_relevance,
                "pneumonia_relevance": factor.pneumonia_relevance,
                "comment": factor.comment,
            }
        form = FactorAnnotationForm(initial=initial)
    annotations = selectors.reader_annotations(assignment=assignment)
    ids = selectors.reader_item_ids(assignment=assignment)
    examples = [(position, annotations.get(ids[position - 1])) for position in group.positions]
    context = {
        "assignment": assignment,
        "review_set": assignment.review_set,
        "group": group,
        "examples": examples,
        "form": form,
        "after": after,
        "finalised": assignment.finalised_at is not None,
    }
    return render(request, "reviewapp/reviews/factor.html", context, status=status)


def _after_factor(assignment: ReviewAssignment, after: str) -> str:
    set_pk = assignment.review_set_id
    position = parse_int(after, min_value=1, max_value=DB_INT_MAX)
    if position is not None:
        following = selectors.reader_next_position(assignment=assignment, after=position)
        if following is not None:
            return reverse("review-item", kwargs={"set_pk": set_pk, "position": following})
    return reverse("review-set", kwargs={"set_pk": set_pk})


@reviewer_required
@require_POST
def review_set_finalise(request: HttpRequest, set_pk: int) -> HttpResponse:
    """Close the reader's answers on the set (every item must be submitted)."""
    assignment = _assignment(request, set_pk)
    try:
        assignment_finalise(assignment=assignment)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("review-set", set_pk=set_pk)
    messages.success(request, "Review set finalised. Thank you! You can now explore its cases.")
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("review-set", set_pk=set_pk)
