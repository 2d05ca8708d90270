from __future__ import annotations

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the export views stream the CSV themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only errors reach a renderer here (exports answer a streamed response); they go out as text.
        return str(data).encode(self.charset)
