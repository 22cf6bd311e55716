"""The API's JSON parser: refuses NUL characters anywhere in the body with a 400 naming the problem.

DRF's ``CharField`` already refuses NUL, but related-field lookups (``department``, ``assignee``) and
other non-char fields would hand it to PostgreSQL, which cannot store NUL in text: a 500."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


class NulSafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError("The JSON body contains a NUL character (\\u0000). Remove it and try again.")
        return data
