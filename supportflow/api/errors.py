"""One error body for every API failure: ``{"error": {"status", "code", "message", "fields"?}}``.

DRF's exceptions are turned into it here; failures outside DRF use ``supportflow.errors`` (same body)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError
from django.http import Http404
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
