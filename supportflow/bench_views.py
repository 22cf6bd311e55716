"""A bare Django view: the baseline the HTTP benchmark compares our pages and API against.

Routed only when ``BENCH_ENDPOINTS`` is on (never by default), like the websocket echo in
``supportflow/consumers.py``. It goes through the whole middleware stack and does nothing else: no
database, no template, no session read.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def bench_hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")
