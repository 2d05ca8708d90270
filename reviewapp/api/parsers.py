"""The API's JSON parser: DRF's, with a bound on nesting (a deeply nested body is a 400, not a stack overflow)
and NaN/Infinity refused (``reviewapp.inputs.json_loads``)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from reviewapp.inputs import json_loads


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(stream.read().decode(encoding))
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {error}") from None
