"""One error body for every API failure: ``{"error": {"status", "code", "message", "fields"?}}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from tickets.services import TicketRuleError


def _first_message(detail) -> str:
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    if isinstance(detail, dict):
        for field, value in detail.items():
            text = _first_message(value)
            return text if field == "non_field_errors" else f"{field}: {text}"
        return "Invalid input."
    return str(detail)


def api_exception_handler(exc, context):
    if isinstance(exc, TicketRuleError):
        exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
        exc.status_code = status.HTTP_409_CONFLICT
        exc.default_code = "conflict"
    if isinstance(exc, DataError):
        # A value the database cannot store (a number out of range, say) slipped past validation: the
        # client's input, so a 400 that says so, not a 500. The request's transaction is rolled back.
        exc = exceptions.ValidationError({"non_field_errors": ["A value is out of range or cannot be stored."]})
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, Http404):
        code = "not_found"
    elif isinstance(exc, DjangoPermissionDenied):
        code = "permission_denied"
    body = {"status": response.status_code, "code": code, "message": _first_message(response.data)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = exc.detail
    response.data = {"error": body}
    return response


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
