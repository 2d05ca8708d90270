"""Tasks of review sets."""

from __future__ import annotations

from reviewapp.models import Job, ReviewSet
from reviewapp.services import review_sets
from reviewapp.tasks.base import job_task


@job_task(queue="gpu")
def review_set_render_task(job: Job, *, review_set_pk: int) -> str:
    """Curate a review set's items and render each item's stack, heatmap and flicker GIF."""
    review_set = ReviewSet.objects.select_related("sweep__study").filter(pk=review_set_pk).first()
    if review_set is None:
        return "The review set was deleted."
    return review_sets.review_set_render(review_set=review_set, job=job)
