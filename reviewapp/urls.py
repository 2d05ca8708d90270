from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

import reviewapp.converters  # noqa: F401 - registers <id:...>
from reviewapp.forms.auth import LoginForm
from reviewapp.views import health, home, jobs

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<id:pk>/progress", jobs.job_progress, name="job-progress"),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("img/favicon.ico"), permanent=True)),
        name="favicon",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("reviewapp.api.urls")),
    path("", include("reviewapp.review_urls")),
    path("", include("reviewapp.study_urls")),
]
