"""Stored images and files, served only to signed-in users who may see them (patient images are never public).

Responses carry ``Cache-Control: private, max-age=...`` and an ETag, so a browser keeps the images of the
reading screen and revalidates them cheaply; shared caches never keep them.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date
from django.views.decorators.http import require_GET

from reviewapp.views.access import admin_required

CONTENT_TYPES = {".png": "image/png", ".gif": "image/gif", ".npy": "application/octet-stream"}


def private_file_response(
    request: HttpRequest, name: str, *, download_name: str | None = None
) -> HttpResponse:
    """The stored file ``name`` (relative to MEDIA_ROOT) with private cache headers and an ETag; 304 when
    the browser's copy is current, 404 when the file is missing."""
    if not name:
        raise Http404("No such file.")
    path = default_storage.path(name)
    try:
        stat = os.stat(path)
    except OSError:
        raise Http404("No such file.") from None
    etag = '"{}"'.format(
        hashlib.sha256(f"{name}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    )
    not_modified = get_conditional_response(request, etag=etag, last_modified=int(stat.st_mtime))
    if not_modified is not None:
        response = not_modified
    else:
        extension = os.path.splitext(name)[1].lower()
        content_type = (
            CONTENT_TYPES.get(extension) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        response = FileResponse(
            open(path, "rb"),  # FileResponse closes it
            content_type=content_type,
            as_attachment=download_name is not None,
            filename=download_name or "",
        )
        response["Last-Modified"] = http_date(stat.st_mtime)
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=settings.MEDIA_CACHE_MAX_AGE)
    return response


@admin_required
@require_GET
def media_file(request: HttpRequest, path: str) -> HttpResponse:
    """Any stored file, for admins (review sets, sweeps and cases link to their images through it)."""
    return private_file_response(request, path)
