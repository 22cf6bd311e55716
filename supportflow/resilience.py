"""What a request gets while PostgreSQL is unreachable: a short 503 with ``Retry-After``, never a traceback.

A database outage (a restart, a failover, the pool timing out on a dead server) raises
``django.db.OperationalError`` / ``InterfaceError`` wherever the first query happens: in a view, or in
a middleware (the session, the user). Two hooks turn both into the same answer:

- ``DatabaseUnavailableMiddleware.process_exception`` for exceptions raised by a view (logged as a
  warning, not as a server error: nothing is wrong with the code);
- ``server_error`` as ``handler500`` for the rest (Django calls it inside the ``except`` block, so
  ``sys.exc_info()`` still names the exception).

``/api/`` gets the API's JSON error shape (``supportflow.errors``); everything else a plain-text line.
The pool recovers by itself once the server is back: ``CONN_HEALTH_CHECKS`` makes it check each
connection it hands out (``psycopg_pool``'s ``check_connection``), so a connection from before the
restart is replaced instead of failing one more request.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy
from django.views import defaults

from supportflow.errors import api_error_response, is_api_request

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_S = 5
MESSAGE = gettext_lazy("The service is briefly unavailable (database). Please try again in a few seconds.")


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        response = api_error_response(503, "service_unavailable", MESSAGE)
    else:
        response = HttpResponse(f"{MESSAGE}\n", status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """A view's database error is an outage to wait out, not a bug: 503 + ``Retry-After``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response(request)


def server_error(request: HttpRequest, template_name: str = defaults.ERROR_500_TEMPLATE_NAME) -> HttpResponse:
    """``handler500``: a database error raised outside a view (a middleware) is a 503 as well."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable_response(request)
    return defaults.server_error(request, template_name)
