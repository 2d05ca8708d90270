"""Admin pages of review sets: create one from a sweep's dimensions, preview its stacks, assign readers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviewapp.forms.sweeps import AssignForm, ReviewSetForm
from reviewapp.models import ReviewSet, Sweep
from reviewapp.selectors.sweeps import review_set_curation_drops, review_set_items
from reviewapp.selectors.users import REVIEWERS_GROUP
from reviewapp.services.review_sets import review_set_assign, review_set_create, review_set_unassign
from reviewapp.views.access import admin_required


def _reviewers():
    return get_user_model().objects.filter(groups__name=REVIEWERS_GROUP).order_by("username")


@admin_required
@require_http_methods(["GET", "POST"])
def review_set_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Curate a review set from the sweep's selected dimensions and any others added by rank (its own images
    per dimension and filters). ``?ranks=2-10`` fills in the ranks to add."""
    sweep = get_object_or_404(Sweep.objects.select_related("study"), pk=pk, status=Sweep.Status.SUCCEEDED)
    dimensions = sweep.dimension_effects.filter(selected=True).order_by("rank")
    if not dimensions.exists():
        # Nothing passed delta: offer the strongest ones so the admin can still look at them.
        top = list(sweep.dimension_effects.order_by("rank").values_list("pk", flat=True)[:10])
        dimensions = sweep.dimension_effects.filter(pk__in=top).order_by("rank")
    initial = {
        "name": f"{sweep.study.name}: sweep {sweep.pk}",
        "dimensions": list(dimensions.filter(selected=True)),
        "ranks": request.GET.get("ranks", "")[:200],
    }
    form = ReviewSetForm(
        request.POST or None,
        dimensions=dimensions,
        ranked=sweep.dimension_effects.order_by("rank"),
        initial=initial,
    )
    if request.method == "POST" and form.is_valid() and not form.chosen_dimensions():
        form.add_error(None, ReviewSetForm.NO_DIMENSIONS)
    if request.method == "POST" and form.is_valid():
        try:
            review_set = review_set_create(
                sweep=sweep,
                dimensions=form.chosen_dimensions(),
                created_by=request.user,
                **form.review_set_parameters(),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("curation-review-set", pk=review_set.pk)
    context = {"sweep": sweep, "study": sweep.study, "form": form, "none_selected": not sweep.num_selected}
    return render(request, "reviewapp/curation/new.html", context, status=400 if form.errors else 200)


@admin_required
def review_set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The set's items (their stacks, difference maps and GIFs), its readers, and the assign form."""
    review_set = get_object_or_404(ReviewSet.objects.select_related("study", "sweep", "job"), pk=pk)
    context = {
        "review_set": review_set,
        "study": review_set.study,
        "items": review_set_items(review_set=review_set),
        "drops": review_set_curation_drops(review_set=review_set),
        "assignments": review_set.assignments.select_related("reader").order_by("reader__username"),
        "assign_form": AssignForm(readers=_reviewers().exclude(assignments__review_set=review_set)),
    }
    return render(request, "reviewapp/curation/detail.html", context)


@admin_required
@require_POST
def review_set_assign_readers(request: HttpRequest, pk: int) -> HttpResponse:
    review_set = get_object_or_404(ReviewSet, pk=pk)
    form = AssignForm(request.POST, readers=_reviewers())
    if form.is_valid():
        readers = list(form.cleaned_data["readers"])
        review_set_assign(review_set=review_set, readers=readers, assigned_by=request.user)
        messages.success(request, f"Assigned {', '.join(r.get_username() for r in readers)}.")
    else:
        messages.error(request, "Choose at least one reviewer.")
    return redirect("curation-review-set", pk=review_set.pk)


@admin_required
@require_POST
def review_set_unassign_reader(request: HttpRequest, pk: int, reader_pk: int) -> HttpResponse:
    review_set = get_object_or_404(ReviewSet, pk=pk)
    reader = get_object_or_404(get_user_model(), pk=reader_pk)
    try:
        review_set_unassign(review_set=review_set, reader=reader)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("curation-review-set", pk=review_set.pk)
