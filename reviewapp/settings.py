"""Django settings: embedded defaults that need no server, overridden by environment variables.

The variables (DATABASE_URL, CELERY_BROKER_URL, CACHE_URL, MEDIA_ROOT, SECRET_KEY, DEBUG, ALLOWED_HOSTS,
CSRF_TRUSTED_ORIGINS, SECURE_COOKIES, SECURE_SSL_REDIRECT, SECURE_HSTS_*, CSP_REPORT_ONLY, LOGIN_*,
CLIENT_ADDRESS_HEADER, VAR_DIR) are described in the README.
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

# SECURE_COOKIES=1 says the app is served over HTTPS (behind a TLS-terminating proxy that sets
# X-Forwarded-Proto): cookies go over HTTPS only, plain HTTP is redirected and browsers are told to use HTTPS
# only (HSTS). Each of the last two can be set on its own.
SECURE_COOKIES = config.env_bool("SECURE_COOKIES")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", default=SECURE_COOKIES)
# Monitoring asks the web process directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = config.env_int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if SECURE_COOKIES else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = config.env_bool("SECURE_HSTS_PRELOAD", default=SECURE_COOKIES)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy of every response (reviewapp.security.ContentSecurityPolicyMiddleware): nothing from
# other origins, no inline scripts or styles except those that carry the request's nonce ({{ request.csp_nonce }}).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'nonce'"],
    "style-src": ["'self'", "'nonce'"],
    "img-src": ["'self'", "data:", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Sends Content-Security-Policy-Report-Only instead, for trying a changed policy without breaking pages.
CONTENT_SECURITY_POLICY_REPORT_ONLY = config.env_bool("CSP_REPORT_ONLY")

# Log-in throttling (reviewapp.services.login_throttle), counted in the cache.
CACHES = {"default": config.cache_config(os.environ.get("CACHE_URL"))}
LOGIN_FAILURES_PER_ACCOUNT = config.env_int("LOGIN_FAILURES_PER_ACCOUNT", default=5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = config.env_int("LOGIN_FAILURES_PER_ADDRESS", default=20, minimum=1)
LOGIN_LOCKOUT_SECONDS = config.env_int("LOGIN_LOCKOUT_SECONDS", default=15 * 60, minimum=1)
# A header with the client's address set by a trusted proxy (X-Forwarded-For, X-Real-IP); REMOTE_ADDR if unset.
CLIENT_ADDRESS_HEADER = os.environ.get("CLIENT_ADDRESS_HEADER", "").strip()

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
    "reviewapp.security.ContentSecurityPolicyMiddleware",
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

DATABASES = {
    "default": config.database_config(
        os.environ.get("DATABASE_URL"),
        var_dir=VAR_DIR,
        # kept connections: 1.5x the requests per second in bench/load.py (docs/benchmarks.md)
        conn_max_age=config.env_int("DATABASE_CONN_MAX_AGE", default=60),
    )
}
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
# Cases come in many files at a time; each file is checked by the import service before it is read or decoded
# (docs/admin-guide.md, "Limits on imported files").
DATA_UPLOAD_MAX_NUMBER_FILES = 2000
CASE_UPLOAD_MAX_BYTES = 200 * 1024 * 1024  # one case file
CASE_IMAGE_MAX_PIXELS = 50_000_000  # width x height its header declares
CASE_IMAGE_MIN_SIDE = 32  # pixels on its shorter side
CASE_IMAGE_MAX_ASPECT_RATIO = 3.0  # longer side / shorter side
CASE_LABELS_MAX_BYTES = 10 * 1024 * 1024  # a labels CSV
CASE_ZIP_MAX_MEMBERS = 20_000  # entries in a zip archive
CASE_ZIP_MAX_TOTAL_BYTES = 20 * 1024 * 1024 * 1024  # uncompressed size its entries declare, all together
CASE_ZIP_MAX_RATIO = 100  # declared uncompressed / compressed size of an entry (of more than 1 MiB)
CHECKPOINT_UPLOAD_MAX_BYTES = 2 * 1024 * 1024 * 1024

# Crash safety of background jobs (reviewapp.services.leases): a running task renews its lease every
# JOB_HEARTBEAT_SECONDS; a lease not renewed for JOB_LEASE_SECONDS belongs to a lost worker and its work is
# sent again, up to JOB_MAX_ATTEMPTS runs in all, then the job fails with the reason. Workers look for lost
# leases every JOB_REAP_INTERVAL_SECONDS (and a job's progress page on every poll).
JOB_HEARTBEAT_SECONDS = float(os.environ.get("JOB_HEARTBEAT_SECONDS", "10"))
JOB_LEASE_SECONDS = float(os.environ.get("JOB_LEASE_SECONDS", "60"))
JOB_REAP_INTERVAL_SECONDS = float(os.environ.get("JOB_REAP_INTERVAL_SECONDS", "15"))
JOB_MAX_ATTEMPTS = int(os.environ.get("JOB_MAX_ATTEMPTS", "3"))

# Sweeps: units of SWEEP_IMAGE_CHUNK images x SWEEP_DIM_CHUNK dimensions, taken by up to SWEEP_PARALLEL_TASKS
# tasks at a time (one per worker that should share a sweep).
SWEEP_IMAGE_CHUNK = int(os.environ.get("SWEEP_IMAGE_CHUNK", "2"))
SWEEP_DIM_CHUNK = int(os.environ.get("SWEEP_DIM_CHUNK", "128"))
SWEEP_PARALLEL_TASKS = int(os.environ.get("SWEEP_PARALLEL_TASKS", "4"))
# A screening sweep makes its strongest N dimensions exact on every image before ranking them (0: off).
SWEEP_SCREENING_REFINE = int(os.environ.get("SWEEP_SCREENING_REFINE", "30"))
# Galleries of the strongest selected dimensions are rendered when a sweep finishes; others on request.
SWEEP_GALLERIES_AT_FINISH = int(os.environ.get("SWEEP_GALLERIES_AT_FINISH", "10"))
# CPU threads PyTorch uses in each process; several worker processes with many threads each on a small machine
# slow one another down badly.
TORCH_NUM_THREADS = int(os.environ.get("TORCH_NUM_THREADS", "1"))
# Where this process's engine work runs: "auto" (the first CUDA GPU when PyTorch sees one, else the CPU), "cpu",
# "cuda" or "cuda:N". Resolved by reviewapp.bridge.models.engine_device; a name that fits no device here is a
# configuration error.
ENGINE_DEVICE = os.environ.get("ENGINE_DEVICE", "auto")
# Run the sweep's and the projection's passes under torch.compile on a CUDA worker: a one-off compilation of a
# minute or two in each worker process, then faster passes (docs/gpu.md). Off by default; the CPU ignores it.
ENGINE_COMPILE = os.environ.get("ENGINE_COMPILE", "0").strip().lower() in ("1", "true", "yes", "on")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API request without credentials is answered 401 with "WWW-Authenticate: Token".
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON nested deeper than reviewapp.inputs.MAX_JSON_DEPTH is a 400 (DRF's own parser would overflow).
    "DEFAULT_PARSER_CLASSES": [
        "reviewapp.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
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
    os.environ.get("CELERY_BROKER_URL"),
    var_dir=VAR_DIR,
    key_prefix=os.environ.get("CELERY_BROKER_KEY_PREFIX", ""),
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
