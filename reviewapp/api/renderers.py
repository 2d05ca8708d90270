from __future__ import annotations

import csv
import io

from rest_framework.renderers import BaseRenderer

from reviewapp.selectors.exports import csv_cell


class CSVRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the export views stream the CSV themselves
    (views.results.csv_stream). What reaches this renderer is an error, written as ``field,message`` rows
    whose cells are made safe for spreadsheets like every export's."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["field", "message"])
        for field, message in _messages(data):
            writer.writerow([csv_cell(field), csv_cell(message)])
        return out.getvalue().encode(self.charset)


def _messages(data, field: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        return [row for key, value in data.items() for row in _messages(value, str(key))]
    if isinstance(data, list | tuple):
        return [row for value in data for row in _messages(value, field)]
    return [(field, "" if data is None else str(data))]
