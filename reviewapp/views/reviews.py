"""The reviewer side: worklist, set overview, the reading screen with its protocol form, factor names."""

from __future__ import annotations

import json
import struct

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.datastructures import MultiValueDict
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.bridge.cases import case_source_pixels
from reviewapp.forms.reviews import AnnotationForm, FactorAnnotationForm
from reviewapp.inputs import DB_INT_MAX, parse_int
from reviewapp.models import AuditAction, ReviewAssignment, ReviewItem
from reviewapp.selectors import reviews as selectors
from reviewapp.services import audit
from reviewapp.services.annotations import (
    AnswerConflict,
    BeforeRatingFrozen,
    ExplanationNotShown,
    annotation_save_draft,
    annotation_show_explanation,
    annotation_submit,
    assignment_finalise,
    factor_annotation_save,
)
from reviewapp.views.access import reviewer_required
from reviewapp.views.media import private_file_response

IMAGE_KINDS = ("original", "reconstruction", "perturbed", "difference", "flicker", "stack", "heatmap")
#: Refusals of a save that conflict with what is stored (finalised set, frozen before-rating, explanation not
#: shown yet): 409, like a save based on an older version.
CONFLICT_CODES = ("finalised", "frozen", "not_shown")


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
    review_set = assignment.review_set
    finalised = assignment.finalised_at is not None
    hidden = selectors.explanation_hidden(review_set=review_set, annotation=annotation, finalised=finalised)

    def image_urls(at: int, shown: ReviewItem | None, hidden: bool) -> dict[str, str]:
        kinds = shown.images() if shown is not None else ()
        return {
            kind: reverse("review-item-image", kwargs={"set_pk": set_pk, "position": at, "kind": kind})
            for kind in IMAGE_KINDS
            if kind in kinds and (not hidden or kind in selectors.BEFORE_STAGE_IMAGES)
        }

    next_position = position + 1 if position < total else None
    next_item = (
        selectors.reader_item_at(assignment=assignment, position=next_position) if next_position else None
    )
    next_hidden = next_item is not None and selectors.reader_explanation_hidden(
        assignment=assignment, item=next_item
    )
    prob = item.prob_original
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
        "arm": item.arm,
        "confidence_change": review_set.confidence_change,
        "awaiting_before": hidden,
        "before_frozen": review_set.confidence_change and not hidden and not finalised,
        "call": None if prob is None else (prob >= 0.5),
        "finalised": assignment.finalised_at is not None,
        "previous_position": position - 1 if position > 1 else None,
        "next_position": next_position,
        "viewer_config": {
            "arm": item.arm,
            "images": image_urls(position, item, hidden),
            "preload": image_urls(next_position, next_item, next_hidden) if next_position else {},
            "awaitingBefore": hidden,
            "showExplanationUrl": reverse(
                "review-item-show-explanation", kwargs={"set_pk": set_pk, "position": position}
            )
            if hidden
            else None,
            "preloadSource": _source_url(assignment, next_position) if next_position else None,
            "autosaveUrl": reverse("review-item-autosave", kwargs={"set_pk": set_pk, "position": position}),
            "previousUrl": reverse("review-item", kwargs={"set_pk": set_pk, "position": position - 1})
            if position > 1
            else None,
            "nextUrl": reverse("review-item", kwargs={"set_pk": set_pk, "position": next_position})
            if next_position
            else None,
            "finalised": assignment.finalised_at is not None,
            "sourceUrl": reverse("review-item-source-pixels", kwargs={"set_pk": set_pk, "position": position})
            if item.case.source_file
            else None,
            "readerId": assignment.reader_id,
            "draftKey": f"draft:{assignment.reader_id}:{set_pk}:{position}",
            "savedAt": annotation.updated_at.isoformat() if annotation is not None else None,
            "savedStatus": ("draft" if annotation.is_draft else "submitted")
            if annotation is not None
            else None,
            "submittedAt": annotation.submitted_at.isoformat()
            if annotation is not None and annotation.submitted_at
            else None,
            "serverNow": timezone.now().isoformat(),
            "refused": form.is_bound,
        },
    }


def _source_url(assignment: ReviewAssignment, position: int) -> str | None:
    """The source-pixels URL of the reader's item at ``position``, if its case keeps a source file."""
    item = selectors.reader_item_at(assignment=assignment, position=position)
    if item is None or not item.case.source_file:
        return None
    return reverse(
        "review-item-source-pixels", kwargs={"set_pk": assignment.review_set_id, "position": position}
    )


@never_cache
@reviewer_required
@require_http_methods(["GET", "POST"])
def item_read(request: HttpRequest, set_pk: int, position: int) -> HttpResponse:
    """The reading screen; POST submits the answers and moves on to the next unanswered item."""
    assignment = _assignment(request, set_pk)
    item = _item(assignment, position)
    session_key = f"reading-screen-refused:{assignment.pk}:{position}"
    if request.method == "GET":
        audit.record(request.user, AuditAction.VIEW_ITEM, item.case, review_set=set_pk, position=position)
        refused = request.session.pop(session_key, None)
        if refused is not None:
            # A refused submit came back here by POST-redirect-GET: show what was posted and why it was refused;
            # reloading shows the page again instead of posting the form again.
            form = AnnotationForm(MultiValueDict(refused["data"]))
            form.is_valid()
            _add_errors(form, refused["errors"])
        else:
            initial = AnnotationForm.initial_from(
                selectors.reader_annotation(assignment=assignment, item=item)
            )
            form = AnnotationForm(initial=initial)
        return render(
            request, "reviewapp/reviews/read.html", _reading_context(assignment, item, position, form)
        )

    form = AnnotationForm(request.POST)
    errors: dict[str, list[str]] = {}
    if form.is_valid():
        try:
            annotation_submit(
                assignment=assignment, item=item, answers=form.answers(), seconds=form.seconds_spent(),
                fields=form.carried(), version=form.loaded_version(),
            )  # fmt: skip
        except AnswerConflict as conflict:
            # The newer answer stays; the page shows it with the reason this submit was not stored.
            form = AnnotationForm(AnnotationForm.initial_from(conflict.current))
            form.is_valid()
            form.add_error(None, conflict.messages[0])
            context = _reading_context(assignment, item, position, form)
            return render(request, "reviewapp/reviews/read.html", context, status=409)
        except (BeforeRatingFrozen, ExplanationNotShown) as refused:
            # The posted answers are shown again (the stored before-rating, not the posted one), with why.
            data = request.POST.copy()
            if isinstance(refused, BeforeRatingFrozen):
                data["confidence_before"] = str(refused.current.confidence_before)
            form = AnnotationForm(data)
            form.is_valid()
            _add_errors(form, _error_messages(refused))
            context = _reading_context(assignment, item, position, form)
            return render(request, "reviewapp/reviews/read.html", context, status=409)
        except ValidationError as error:
            errors = _error_messages(error)
        else:
            return redirect(_after_submit(assignment, item, position))
    if assignment.finalised_at is not None:
        _add_errors(form, errors)
        context = _reading_context(assignment, item, position, form)
        return render(request, "reviewapp/reviews/read.html", context, status=409)
    data = {
        key: request.POST.getlist(key)
        for key in request.POST
        if key not in ("csrfmiddlewaretoken", "seconds")
    }
    request.session[session_key] = {"data": data, "errors": errors}
    see_other = HttpResponseRedirect(request.path)
    see_other.status_code = 303
    return see_other


def _add_errors(form: AnnotationForm, errors: dict[str, list[str]]) -> None:
    for field, messages_ in errors.items():
        for message in messages_:
            form.add_error(None if field == "__all__" or field not in form.fields else field, message)


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
            assignment=assignment, item=item, answers=form.answers(), seconds=form.seconds_spent(),
            fields=form.carried(), version=form.loaded_version(),
        )  # fmt: skip
    except AnswerConflict as conflict:
        current = conflict.current
        return JsonResponse(
            {
                "saved": False,
                "conflict": True,
                "errors": {"__all__": conflict.messages},
                "version": current.version,
                "updated_at": current.updated_at.isoformat(),
            },
            status=409,
        )
    except ValidationError as error:
        status = 409 if getattr(error, "code", None) in CONFLICT_CODES else 400
        return JsonResponse({"saved": False, "errors": _error_messages(error)}, status=status)
    return JsonResponse(
        {
            "saved": True,
            "status": "draft" if annotation.is_draft else "submitted",
            "version": annotation.version,
            "updated_at": annotation.updated_at.isoformat(),
            "time_spent_seconds": annotation.time_spent_seconds,
        }
    )


@reviewer_required
@require_POST
def item_show_explanation(request: HttpRequest, set_pk: int, position: int) -> JsonResponse:
    """Confidence change: show the explanation of the item, once the call is rated from the original alone
    (the rating may come with the request). From then on the before-rating cannot change; JSON in reply."""
    assignment = _assignment(request, set_pk)
    item = _item(assignment, position)
    form = AnnotationForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"shown": False, "errors": form.errors.get_json_data()}, status=400)
    try:
        annotation = annotation_show_explanation(
            assignment=assignment, item=item, confidence_before=form.answers().confidence_before,
            seconds=form.seconds_spent(), version=form.loaded_version(),
        )  # fmt: skip
    except AnswerConflict as conflict:
        return JsonResponse(
            {"shown": False, "conflict": True, "errors": {"__all__": conflict.messages}}, status=409
        )
    except ValidationError as error:
        status = 409 if getattr(error, "code", None) in CONFLICT_CODES else 400
        return JsonResponse({"shown": False, "errors": _error_messages(error)}, status=status)
    return JsonResponse(
        {
            "shown": True,
            "shown_at": annotation.explanation_shown_at.isoformat(),
            "version": annotation.version,
            "confidence_before": annotation.confidence_before,
        }
    )


@reviewer_required
@require_GET
def item_image(request: HttpRequest, set_pk: int, position: int, kind: str) -> HttpResponse:
    """One image of the reader's item at ``position``; the URL names neither the dimension nor the case.
    In a confidence-change set only the original is served until the explanation was shown (403)."""
    if kind not in IMAGE_KINDS:
        raise Http404("No such image.")
    assignment = _assignment(request, set_pk)
    item = _item(assignment, position)
    image = item.images().get(kind)
    if not image:
        raise Http404("No such image for this item.")
    if kind not in selectors.BEFORE_STAGE_IMAGES and selectors.reader_explanation_hidden(
        assignment=assignment, item=item
    ):
        raise PermissionDenied(
            "Rate your confidence in the classifier's call before the explanation is shown."
        )
    response = private_file_response(request, image.name)
    audit.record(
        request.user, AuditAction.VIEW_IMAGE, item.case, review_set=set_pk, position=position, kind=kind
    )
    return response


@reviewer_required
@require_GET
def item_source_pixels(request: HttpRequest, set_pk: int, position: int) -> HttpResponse:
    """The original's source pixels (16-bit PNG/TIFF or DICOM keep their depth) for window/level in the
    browser: a 4-byte little-endian length, that many bytes of JSON (size, the scale to source units, the
    file's own windows), padding to an even offset, then the pixels as little-endian uint16, row by row.
    404 when the case keeps no readable source file."""
    item = _item(_assignment(request, set_pk), position)
    source = case_source_pixels(item.case)
    if source is None:
        raise Http404("This case keeps no source pixels.")
    header = json.dumps(source.info()).encode()
    padding = b" " * ((4 + len(header)) % 2)
    body = struct.pack("<I", len(header) + len(padding)) + header + padding
    body += source.values.astype("<u2").tobytes()
    response = HttpResponse(body, content_type="application/octet-stream")
    patch_cache_control(response, private=True, max_age=settings.MEDIA_CACHE_MAX_AGE)
    return response


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
    hidden = selectors.reader_items_explanation_hidden(assignment=assignment)
    examples = [
        (position, annotations.get(ids[position - 1]), ids[position - 1] in hidden)
        for position in group.positions
    ]
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
