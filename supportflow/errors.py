"""The API's JSON error body for failures that never reach a DRF view, and Django's error handlers that
answer it under ``/api/``: ``{"error": {"status", "code", "message"}}``. Infrastructure: imports no app,
so the middleware and ``resilience`` can use it without pulling in DRF."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def api_error_response(status_code: int, code: str, message: str) -> HttpResponse:
    """The same body for failures that never reach a DRF view (middleware, URL resolution)."""
    return JsonResponse({"error": {"status": status_code, "code": code, "message": message}}, status=status_code)


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


# Django's own handlers answer HTML; under /api/ a client always gets the JSON error body instead — a path
# no route matches (an odd slug, a newline), a refused Host header, a CSRF failure outside DRF.
def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        return api_error_response(404, "not_found", "No such API endpoint or object. The list is at /api/v1/docs/.")
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        message = "The request could not be understood: malformed, too large, or for a host this server does not serve."
        return api_error_response(400, "bad_request", message)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        return api_error_response(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)
