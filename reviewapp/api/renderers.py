from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer
from rest_framework.utils.encoders import JSONEncoder


class CSVRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the export views stream the CSV themselves.

    Only errors reach this renderer (exports answer a streamed response): they go out as JSON, with
    ``Content-Type: application/json`` and their own status, as from every other endpoint of the API.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        if data is None:
            return b""
        return json.dumps(data, cls=JSONEncoder, ensure_ascii=False).encode(self.charset)
