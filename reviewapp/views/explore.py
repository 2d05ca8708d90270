"""Explore mode: sliders over style dimensions of one case, regenerated on the server as they move.

Admins may explore any case; a reviewer may explore the cases of the review sets they have finalised.
"""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reviewapp import explore
from reviewapp.bridge.models import StudyModelError
from reviewapp.inputs import DB_INT_MAX, parse_int
from reviewapp.models import Case, DimensionEffect, Projection, ReviewItem, Sweep
from reviewapp.selectors.reviews import reader_can_explore
from reviewapp.selectors.users import user_is_admin
from reviewapp.views.media import private_file_response

DEFAULT_SLIDERS = 12


def _case(request: HttpRequest, case_pk: int) -> Case:
    case = get_object_or_404(Case.objects.select_related("study"), pk=case_pk)
    if not (user_is_admin(request.user) or reader_can_explore(reader=request.user, case_id=case.pk)):
        raise Http404("No such case.")
    return case


def _projection(case: Case) -> Projection:
    projection = (
        Projection.objects.filter(case=case, status=Projection.Status.SUCCEEDED)
        .exclude(styles_file="")
        .order_by("-created_at", "-pk")
        .first()
    )
    if projection is None:
        raise Http404("This case has not been projected yet.")
    return projection


def _dimensions_to_show(case: Case, requested: str) -> list[int]:
    """Dimensions asked for in ``?dims=``, then those shown with this case in review sets, then the
    strongest selected dimensions of the study's newest sweep."""
    dims = [
        dim for dim in (parse_int(d, max_value=DB_INT_MAX) for d in requested.split(",")) if dim is not None
    ]
    dims += ReviewItem.objects.filter(
        counterfactual__isnull=False, counterfactual__projection__case=case
    ).values_list("counterfactual__dimension__dim", flat=True)
    sweep = (
        Sweep.objects.filter(study=case.study, status=Sweep.Status.SUCCEEDED).order_by("-created_at").first()
    )
    if sweep is not None:
        dims += (
            DimensionEffect.objects.filter(sweep=sweep, selected=True)
            .order_by("rank")
            .values_list("dim", flat=True)[:DEFAULT_SLIDERS]
        )
    return list(dict.fromkeys(dims))[: explore.MAX_CHANGES]


@never_cache
@require_GET
def explore_case(request: HttpRequest, case_pk: int) -> HttpResponse:
    """The explore page of one case."""
    case = _case(request, case_pk)
    projection = _projection(case)
    error = ""
    try:
        sliders = explore.sliders(
            study=case.study,
            projection=projection,
            dims=_dimensions_to_show(case, request.GET.get("dims", "")),
        )
    except (StudyModelError, OSError, ValueError) as exc:
        sliders, error = [], f"The study's models cannot be loaded: {exc}"
    config = {
        "renderUrl": reverse("explore-render", kwargs={"case_pk": case.pk}),
        "sliders": [slider.__dict__ for slider in sliders],
        "probabilityReconstruction": projection.prob_reconstruction,
    }
    context = {
        "case": case,
        "projection": projection,
        "sliders": sliders,
        "config": config,
        "error": error,
        "style_dims": case.study.style_dims,
    }
    return render(request, "reviewapp/explore/case.html", context)


@require_GET
def explore_render(request: HttpRequest, case_pk: int) -> JsonResponse:
    """``?s=DIM:VALUE`` (repeated) -> the regenerated image (PNG data URL) and its probability."""
    case = _case(request, case_pk)
    projection = _projection(case)
    style_dims = case.study.style_dims or explore.projection_styles(projection).size
    try:
        changes = explore.parse_changes(request.GET.getlist("s"), style_dims=style_dims)
        frame = explore.render(study=case.study, projection=projection, changes=changes)
    except explore.ExploreError as error:
        return JsonResponse({"error": str(error)}, status=400)
    image = "data:image/png;base64," + base64.b64encode(frame.png).decode("ascii")
    response = JsonResponse(
        {"image": image, "probability": frame.probability, "milliseconds": round(frame.milliseconds, 1)}
    )
    response["Cache-Control"] = "private, max-age=600"
    return response


@require_GET
def explore_image(request: HttpRequest, case_pk: int, kind: str) -> HttpResponse:
    """The case's original image or its reconstruction, for the explore page."""
    case = _case(request, case_pk)
    if kind == "original":
        return private_file_response(request, case.image.name)
    if kind == "reconstruction":
        return private_file_response(request, _projection(case).reconstruction.name)
    raise Http404("No such image.")
