"""Django settings: embedded defaults that need no server, overridden by environment variables.

The variables (DATABASE_URL, CELERY_BROKER_URL, MEDIA_ROOT, SECRET_KEY, DEBUG, ALLOWED_HOSTS,
CSRF_TRUSTED_ORIGINS, SECURE_COOKIES, VAR_DIR) are described in the README.
"""

from __future__ import annotations

import os
from pathlib import Path

from kombu import Exchange, Queue

from reviewapp import config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = config.env_path("VAR_DIR", default=BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = config.secret_key(os.environ.get("SECRET_KEY"), var_dir=VAR_DIR)
DEBUG = config.env_bool("DEBUG")
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_COOKIES = config.env_bool("SECURE_COOKIES")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "reviewapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a signed-in user unless it is marked @login_not_required (log-in page, /healthz).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"
ASGI_APPLICATION = "reviewapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviewapp.context_processors.roles",
            ],
        },
    },
]

DATABASES = {"default": config.database_config(os.environ.get("DATABASE_URL"), var_dir=VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from static/ too, so the demo needs no collectstatic; production runs collectstatic.
WHITENOISE_USE_FINDERS = True

MEDIA_ROOT = config.env_path("MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
# Cases come in many files at a time; each file is checked for size by the import service.
DATA_UPLOAD_MAX_NUMBER_FILES = 2000
CASE_UPLOAD_MAX_BYTES = 200 * 1024 * 1024
CHECKPOINT_UPLOAD_MAX_BYTES = 2 * 1024 * 1024 * 1024

# Sweeps: units of SWEEP_IMAGE_CHUNK images x SWEEP_DIM_CHUNK dimensions, taken by up to SWEEP_PARALLEL_TASKS
# tasks at a time (one per worker that should share a sweep).
SWEEP_IMAGE_CHUNK = int(os.environ.get("SWEEP_IMAGE_CHUNK", "2"))
SWEEP_DIM_CHUNK = int(os.environ.get("SWEEP_DIM_CHUNK", "128"))
SWEEP_PARALLEL_TASKS = int(os.environ.get("SWEEP_PARALLEL_TASKS", "4"))
# Galleries of the strongest selected dimensions are rendered when a sweep finishes; others on request.
SWEEP_GALLERIES_AT_FINISH = int(os.environ.get("SWEEP_GALLERIES_AT_FINISH", "10"))
# CPU threads PyTorch uses in each process; several worker processes with many threads each on a small machine
# slow one another down badly.
TORCH_NUM_THREADS = int(os.environ.get("TORCH_NUM_THREADS", "1"))
# Where this process's engine work runs: "auto" (the first CUDA GPU when PyTorch sees one, else the CPU), "cpu",
# "cuda" or "cuda:N". Resolved by reviewapp.bridge.models.engine_device; a name that fits no device here is a
# configuration error.
ENGINE_DEVICE = os.environ.get("ENGINE_DEVICE", "auto")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API request without credentials is answered 401 with "WWW-Authenticate: Token".
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CXR counterfactual review API",
    "DESCRIPTION": "Studies, cases, sweeps, dimensions, review sets, items, annotations and exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: the docs page loads nothing from outside.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "PneumoniaRelevanceEnum": "reviewapp.models.reviews.PneumoniaRelevance",
        "FactorRelevanceEnum": "reviewapp.models.reviews.FactorRelevance",
        "SweepStatusEnum": "reviewapp.models.sweeps.Sweep.Status",
        "ReviewSetStatusEnum": "reviewapp.models.reviews.ReviewSet.Status",
        "AnswerStatusEnum": [("draft", "draft"), ("submitted", "submitted")],
    },
}
# Reading-screen images: browsers keep them this long (private caches only) and revalidate with ETags.
MEDIA_CACHE_MAX_AGE = 3600

# Celery: read by reviewapp/celery.py through the CELERY_ namespace.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = config.broker_config(
    os.environ.get("CELERY_BROKER_URL"), var_dir=VAR_DIR
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
    Queue("interactive", Exchange("interactive"), routing_key="interactive"),
)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ("reviewapp.celery.route_task",)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Job rows carry state and results; nothing reads Celery's result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Tasks are long; a worker takes one message at a time so that others can take the next.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
