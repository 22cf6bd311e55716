"""The API's JSON renderer: DRF's, plus list pages whose rows PostgreSQL already wrote as JSON."""

from __future__ import annotations

import json

from rest_framework import renderers

from supportflow.api.serializers import RawRows


class JSONRenderer(renderers.JSONRenderer):
    """A page whose ``results`` are ``RawRows`` (JSON texts) is DRF's rendering of the rest with the rows
    spliced in as they are: the same document, without a Python value per field. Indented output (an
    ``indent`` in the Accept header) parses the rows first and is rendered by DRF whole."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, RawRows):
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            data = {**data, "results": [json.loads(row) for row in results]}
            return super().render(data, accepted_media_type, renderer_context)
        head = super().render(
            {key: value for key, value in data.items() if key != "results"}, accepted_media_type, renderer_context
        )
        # as DRF does: U+2028/2029 escaped, so the document is also valid JavaScript
        rows = ",".join(results).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return b'%s%s"results":[%s]}' % (head[:-1], b"," if len(head) > 2 else b"", rows.encode())
