"""System checks of this project's own settings (``manage.py check --deploy`` runs the deployment ones)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs, **kwargs) -> list[Warning]:
    """Log-in throttling counts failures in the cache; a process-local cache lets each web process count alone."""
    if settings.CACHES["default"]["BACKEND"] != LOCAL_MEMORY_CACHE:
        return []
    return [
        Warning(
            "The cache is each process's own memory, so log-in throttling counts failures per web process.",
            hint="Set CACHE_URL=redis://host:6379/1 so that every web process shares one count.",
            id="reviewapp.W001",
        )
    ]
