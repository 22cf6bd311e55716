"""Request hygiene shared by every route.

- Content Security Policy on every response: scripts only from our own origin (htmx runs without eval:
  ``allowEval`` is off in its config), no plugins, no framing, websockets to our origin only.
- NUL bytes in the path, query string, cookies or a url-encoded form body are refused with a 400
  before any view runs: PostgreSQL text cannot hold them, so a lookup or search with one would
  otherwise fail as a 500. JSON bodies are checked by the API's parser (``supportflow.api.parsers``);
  multipart text fields by Django's form validators (files may hold any byte).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpResponse

from supportflow.errors import api_error_response, is_api_request

DEFAULT_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # The admin and our badges use style attributes; no inline <style> from htmx (disabled).
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


NUL_MESSAGE = "The address, query, form or a cookie contains a NUL character (%00). Remove it and try again."


def _has_nul(request) -> bool:
    if "\x00" in request.path_info:
        return True
    query = request.META.get("QUERY_STRING", "")
    if query and b"\x00" in unquote_to_bytes(query.replace("+", " ")):
        return True
    if any("\x00" in key or "\x00" in value for key, value in request.COOKIES.items()):
        return True
    if request.content_type == "application/x-www-form-urlencoded" and request.method not in ("GET", "HEAD"):
        return b"\x00" in unquote_to_bytes(request.body.replace(b"+", b" "))
    return False


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _has_nul(request):
            return self.get_response(request)
        if is_api_request(request):
            return api_error_response(400, "invalid_request", NUL_MESSAGE)
        return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")
