"""Bare Django views: the baselines the HTTP benchmark compares our pages and API against.

Routed only when ``BENCH_ENDPOINTS`` is on (never by default), like the websocket echoes in
``supportflow/consumers.py``.

- ``bench_hello`` goes through the whole middleware stack and does nothing else: no database, no
  template, no session read.
- ``bench_ticket_floor`` is the floor under the ticket-list API: the very statement the API sends for
  its first page (scope, page and bounded count in one), compiled once per user and then only executed —
  one round trip, rows dumped as JSON as PostgreSQL returns them. No key lookup, no roles, no DRF, no
  row formatting, no throttle. What the API costs above it is ours; what this costs above
  ``bench_hello`` is the query and the round trip any implementation pays. With ``?prepared=1`` the same
  statement is bound on the server and prepared once per connection (Django's connections bind on the
  client and prepare nothing): what the floor would be if the API's statement were prepared.
- ``BenchApiFloor`` is the other floor under every API endpoint: DRF with the API's own key check, scope
  permission, rate limit and renderer, answering an empty page — no query of its own. What the ticket
  list costs above it is the list; what it costs above ``bench_hello`` is the API's framework.
"""

from __future__ import annotations

import json

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView

_FLOOR_SQL: dict[str, tuple[str, tuple]] = {}


class BenchApiFloor(APIView):
    required_scopes = {"GET": "tickets:read"}

    def get(self, request):
        return Response({"count": 0, "count_is_exact": True, "next": None, "previous": None, "results": []})


def bench_hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


def _first_page_statement(username: str) -> tuple[str, tuple]:
    from supportflow.api import serializers
    from supportflow.api.pagination import COUNT_COLUMN, COUNT_LIMIT, BoundedCount, KeysetPagination
    from tickets import selectors

    user = get_user_model().objects.get(username=username)
    qs = selectors.ticket_queryset_for_user(user=user).order_by("-created_at", "-pk")
    bounded = qs.order_by().values("pk")[: COUNT_LIMIT + 1]
    page = qs.values(*serializers.TICKET_COLUMNS).annotate(**{COUNT_COLUMN: BoundedCount(bounded)})
    return page[: KeysetPagination.page_size + 1].query.sql_with_params()


def bench_ticket_floor(request: HttpRequest) -> HttpResponse:
    username = request.GET.get("user", "")
    if username not in _FLOOR_SQL:
        try:
            _FLOOR_SQL[username] = _first_page_statement(username)
        except get_user_model().DoesNotExist:
            return JsonResponse({"detail": "no such user"}, status=404)
    sql, params = _FLOOR_SQL[username]
    prepared = bool(request.GET.get("prepared"))
    with _server_bound_cursor() if prepared else connection.cursor() as cursor:
        cursor.execute(sql, params, **({"prepare": True} if prepared else {}))
        names = [col.name for col in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return HttpResponse(json.dumps({"results": rows}, default=str), content_type="application/json")


def _server_bound_cursor() -> psycopg.Cursor:
    """A cursor binding on the server, on this request's pooled psycopg connection (Django's cursors bind on
    the client and never prepare, so enabling preparation on the connection changes nothing else)."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 5
    return psycopg.Cursor(raw)
