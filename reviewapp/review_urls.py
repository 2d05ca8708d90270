"""Routes of the reviewer side, the review results and exports, and explore mode (included by urls.py)."""

from django.urls import path

import reviewapp.converters  # noqa: F401 - registers <id:...>
from reviewapp.views import explore, media, results, reviews

urlpatterns = [
    # Reviewers
    path("reviews/", reviews.worklist, name="worklist"),
    path("reviews/<id:set_pk>/", reviews.review_set_overview, name="review-set"),
    path("reviews/<id:set_pk>/resume", reviews.review_set_resume, name="review-set-resume"),
    path("reviews/<id:set_pk>/finalise", reviews.review_set_finalise, name="review-set-finalise"),
    path("reviews/<id:set_pk>/items/<id:position>/", reviews.item_read, name="review-item"),
    path("reviews/<id:set_pk>/items/<id:position>/draft", reviews.item_autosave, name="review-item-autosave"),
    path(
        "reviews/<id:set_pk>/items/<id:position>/show-explanation",
        reviews.item_show_explanation,
        name="review-item-show-explanation",
    ),
    path(
        "reviews/<id:set_pk>/items/<id:position>/source-pixels",
        reviews.item_source_pixels,
        name="review-item-source-pixels",
    ),
    path(
        "reviews/<id:set_pk>/items/<id:position>/<str:kind>",
        reviews.item_image,
        name="review-item-image",
    ),
    path("reviews/<id:set_pk>/factors/<id:number>/", reviews.factor_annotate, name="review-factor"),
    # Admins: results of several readers, the factor catalogue, exports
    path("review-sets/<id:pk>/results/", results.review_set_results, name="review-set-results"),
    path("review-sets/<id:pk>/export/reviews.csv", results.export_reviews, name="export-reviews"),
    path("review-sets/<id:pk>/export/agreement.csv", results.export_agreement, name="export-agreement"),
    path("studies/<id:pk>/factors/", results.factor_catalogue, name="factor-catalogue"),
    path("studies/<id:pk>/factors.csv", results.export_factor_catalogue, name="export-factors"),
    path("sweeps/<id:pk>/export/dimensions.csv", results.export_dimensions, name="export-dimensions"),
    path("audit.csv", results.export_audit, name="export-audit"),
    # Explore mode
    path("explore/cases/<id:case_pk>/", explore.explore_case, name="explore-case"),
    path("explore/cases/<id:case_pk>/render", explore.explore_render, name="explore-render"),
    path("explore/cases/<id:case_pk>/<str:kind>.png", explore.explore_image, name="explore-image"),
    # Stored files, for admins
    path("media/<path:path>", media.media_file, name="media"),
]
