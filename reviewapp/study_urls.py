"""Routes of the admin side: studies, cases, sweeps, dimensions, the Counterfactual lab and review-set curation
(included by urls.py)."""

from django.urls import path

from reviewapp.views import curation, lab, studies, sweeps

urlpatterns = [
    path("studies/new", studies.study_new, name="study-new"),
    path("studies/<int:pk>/", studies.study_detail, name="study"),
    path("studies/<int:pk>/cases/upload", studies.case_upload, name="study-case-upload"),
    path(
        "studies/<int:pk>/projections/retry", studies.study_retry_projections, name="study-retry-projections"
    ),
    path("studies/<int:pk>/ranges/estimate", studies.study_reestimate_ranges, name="study-estimate-ranges"),
    path("studies/<int:pk>/sweeps/new", sweeps.sweep_new, name="sweep-new"),
    path("studies/<int:pk>/lab/", lab.lab, name="lab"),
    path("studies/<int:pk>/lab/compare", lab.lab_compare, name="lab-compare"),
    path("lab-runs/<int:pk>/", lab.lab_run_detail, name="lab-run"),
    path("lab-runs/<int:pk>/cancel", lab.lab_run_stop, name="lab-run-cancel"),
    path("lab-runs/<int:pk>/add-to-review-set", lab.lab_run_add, name="lab-run-add"),
    path("sweeps/<int:pk>/", sweeps.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/cancel", sweeps.sweep_stop, name="sweep-cancel"),
    path("sweeps/<int:pk>/resume", sweeps.sweep_continue, name="sweep-resume"),
    path("sweeps/<int:pk>/progress", sweeps.sweep_progress, name="sweep-progress"),
    path("sweeps/<int:pk>/dimensions/<int:dim>/", sweeps.dimension_detail, name="sweep-dimension"),
    path(
        "sweeps/<int:pk>/dimensions/<int:dim>/render", sweeps.dimension_render, name="sweep-dimension-render"
    ),
    path("sweeps/<int:pk>/review-sets/new", curation.review_set_new, name="review-set-new"),
    path("review-sets/<int:pk>/", curation.review_set_detail, name="curation-review-set"),
    path("review-sets/<int:pk>/assign", curation.review_set_assign_readers, name="review-set-assign"),
    path(
        "review-sets/<int:pk>/readers/<int:reader_pk>/unassign",
        curation.review_set_unassign_reader,
        name="review-set-unassign",
    ),
]
