"""Routes of the admin side: studies, cases, sweeps, dimensions, the Counterfactual lab and review-set curation
(included by urls.py)."""

from django.urls import path

import reviewapp.converters  # noqa: F401 - registers <id:...>
from reviewapp.views import curation, lab, studies, sweeps

urlpatterns = [
    path("studies/new", studies.study_new, name="study-new"),
    path("studies/<id:pk>/", studies.study_detail, name="study"),
    path("studies/<id:pk>/cases/upload", studies.case_upload, name="study-case-upload"),
    path(
        "studies/<id:pk>/projections/retry", studies.study_retry_projections, name="study-retry-projections"
    ),
    path("studies/<id:pk>/ranges/estimate", studies.study_reestimate_ranges, name="study-estimate-ranges"),
    path("studies/<id:pk>/sweeps/new", sweeps.sweep_new, name="sweep-new"),
    path("studies/<id:pk>/lab/", lab.lab, name="lab"),
    path("studies/<id:pk>/lab/compare", lab.lab_compare, name="lab-compare"),
    path("lab-runs/<id:pk>/", lab.lab_run_detail, name="lab-run"),
    path("lab-runs/<id:pk>/cancel", lab.lab_run_stop, name="lab-run-cancel"),
    path("lab-runs/<id:pk>/add-to-review-set", lab.lab_run_add, name="lab-run-add"),
    path("sweeps/<id:pk>/", sweeps.sweep_detail, name="sweep"),
    path("sweeps/<id:pk>/cancel", sweeps.sweep_stop, name="sweep-cancel"),
    path("sweeps/<id:pk>/resume", sweeps.sweep_continue, name="sweep-resume"),
    path("sweeps/<id:pk>/progress", sweeps.sweep_progress, name="sweep-progress"),
    path("sweeps/<id:pk>/dimensions/<id:dim>/", sweeps.dimension_detail, name="sweep-dimension"),
    path("sweeps/<id:pk>/dimensions/<id:dim>/render", sweeps.dimension_render, name="sweep-dimension-render"),
    path("sweeps/<id:pk>/review-sets/new", curation.review_set_new, name="review-set-new"),
    path("review-sets/<id:pk>/", curation.review_set_detail, name="curation-review-set"),
    path("review-sets/<id:pk>/assign", curation.review_set_assign_readers, name="review-set-assign"),
    path(
        "review-sets/<id:pk>/readers/<id:reader_pk>/unassign",
        curation.review_set_unassign_reader,
        name="review-set-unassign",
    ),
]
