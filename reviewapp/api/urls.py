"""Routes of the API under /api/: resources, token log-in, the OpenAPI schema and its docs page.

DRF authenticates API requests itself (session or token) and answers 401/403; its views are exempt from the
log-in redirect of LoginRequiredMiddleware. The docs pages are for people in a browser and keep the redirect.
"""

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from reviewapp.api import views
from reviewapp.api.auth import obtain_auth_token
from reviewapp.security import csp_allow_inline_styles

router = DefaultRouter()
router.register("studies", views.StudyViewSet, basename="study")
router.register("cases", views.CaseViewSet, basename="case")
router.register("sweeps", views.SweepViewSet, basename="sweep")
router.register("dimensions", views.DimensionViewSet, basename="dimension")
router.register("lab-runs", views.LabRunViewSet, basename="lab-run")
router.register("review-sets", views.ReviewSetViewSet, basename="review-set")
router.register("items", views.ReviewItemViewSet, basename="item")
router.register("annotations", views.AnnotationViewSet, basename="annotation")
router.register("factor-annotations", views.FactorAnnotationViewSet, basename="factor-annotation")

schema = SpectacularAPIView.as_view(permission_classes=[IsAuthenticated])
# The split view serves its script from a URL of its own, as the Content-Security-Policy requires.
docs = login_required(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated])
)
# Redoc writes its styles into the page at run time.
redoc = csp_allow_inline_styles(
    login_required(SpectacularRedocView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]))
)

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", schema, name="api-schema"),
    path("docs/", docs, name="api-docs"),
    path("redoc/", redoc, name="api-redoc"),
    *router.urls,
]
