"""List pagination without a COUNT(*) over the whole scoped set on every page.

``KeysetPagination`` keeps the documented body ``{"count", "next", "previous", "results"}`` and adds
``count_is_exact``. By default the pages are cut by a keyset cursor: ``next``/``previous`` carry
``?cursor=…`` (opaque; it encodes the last row's ordering values and the primary key), each page is
``WHERE (ordering values) beyond the cursor … LIMIT 26`` on the ordering's index, and ``count`` is exact up
to ``COUNT_LIMIT`` rows and capped there (``count_is_exact: false``): counting 7,860 tickets cost a
sequential scan of the scoped set (4.6 ms in PostgreSQL) on every page, 20× the page's own query.

``?page=N`` is still served the old way (offset pages, exact ``count``, ``?page=`` links), for clients
that build page numbers themselves or need the exact total; it costs the full count again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections import OrderedDict

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import IntegerField, Q, QuerySet, Subquery
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from supportflow.compiled import CompiledQueries

COUNT_LIMIT = 1000
COUNT_COLUMN = "_bounded_count"
ROW_COLUMN = "_row"  # paginate_compiled(row_sql=…): the row as the statement wrote it
BAD_CURSOR = "The cursor is not valid: follow the next/previous links as given, with the same ordering."
_PAGES = CompiledQueries()  # page statements by shape (paginate_compiled)


class BoundedCount(Subquery):
    """``COUNT(*)`` of a sliced queryset, as a column of the page's own query: an uncorrelated scalar
    subquery, so PostgreSQL runs it once per statement (an InitPlan) and the page and its count take one
    round trip and one plan."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS bounded)"
    output_field = IntegerField()


class _LegacyPages(PageNumberPagination):
    page_size = 25


class KeysetPagination(BasePagination):
    """Pages of ``page_size`` rows of a queryset already filtered and ordered by the view.

    The rows may be model instances or ``.values()`` dicts (then they must include ``id`` and every
    ordering field). The queryset's own ``order_by`` is the ordering; ``pk`` is appended as a tie-break so
    a cursor names exactly one position even when many rows share a priority or a status. The ordering
    fields must be NOT NULL (a keyset comparison with NULL matches nothing).
    """

    page_size = 25
    cursor_query_param = "cursor"
    page_query_param = "page"
    count_limit = COUNT_LIMIT

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        self.request = request
        self.legacy = None
        ordering = _ordering_of(queryset)
        if self.page_query_param in request.query_params:
            self.legacy = _LegacyPages()  # with the pk tie-break too: tied rows no longer swap between pages
            return self.legacy.paginate_queryset(queryset.order_by(*ordering), request, view)
        cursor = self._start(request, ordering, queryset.model)
        bounded = self._bounded(queryset)
        return self._finish(list(self._page(queryset, cursor, bounded)), cursor, bounded.count)

    def paginate_compiled(
        self, request, *, model, ordering: list[str], shape, values: list, build, row_sql=None
    ) -> list[dict]:
        """``paginate_queryset(build(values).values(…))`` with the page's statement composed and compiled
        by the ORM once per shape (``supportflow.compiled``), then bound to this request's values and
        cursor. ``build(values)`` is the view's scoped, filtered ``.values()`` queryset; ``shape`` names
        everything that changes its SQL's text; ``ordering`` is what the view orders it by.

        ``row_sql(id_column)``: a scalar subquery for a row's ``ROW_COLUMN``, run in the same statement
        as the page (a page composed by the ORM, when its shape cannot be bound, has no such column)."""
        self.request = request
        self.legacy = None
        if self.page_query_param in request.query_params:
            return self.paginate_queryset(build(values), request)
        ordering = _keyset_ordering(ordering)
        cursor = self._start(request, ordering, model)
        given = len(values)

        def page(all_values: list) -> QuerySet:
            queryset = build(all_values[:given])
            bounded = self._bounded(queryset)
            at = None if cursor is None else {"values": all_values[given:], "reverse": cursor["reverse"]}
            return self._page(queryset, at, bounded)

        all_values = [*values, *(cursor["values"] if cursor else ())]
        reverse = None if cursor is None else cursor["reverse"]
        page_shape = (shape, tuple(ordering), reverse, self.page_size, self.count_limit)  # the LIMITs are SQL text
        bound = _PAGES.bind(page_shape, all_values, page)
        if bound is None:
            rows = list(page(all_values))
        else:
            rows = _dict_rows(*(bound if row_sql is None else self._with_rows(*bound, row_sql, cursor)))
        return self._finish(rows, cursor, lambda: self._bounded(build(values)).count())

    def _with_rows(self, sql: str, params: list, row_sql, cursor: dict | None) -> tuple[str, list]:
        """The page's statement as a subquery, each of its rows with ``row_sql``'s column, in its order."""
        qn = connection.ops.quote_name
        reverse = bool(cursor and cursor["reverse"])
        terms = (_flip(term) for term in self.ordering) if reverse else self.ordering
        order = ", ".join(f"page.{qn(t.lstrip('-'))}{' DESC' if t.startswith('-') else ''}" for t in terms)
        row = row_sql(f"page.{qn('id')}")
        # the SQL the ORM compiled; names from the ordering's fields
        return f"SELECT page.*, ({row}) AS {qn(ROW_COLUMN)} FROM ({sql}) page ORDER BY {order}", params  # noqa: S608

    def _start(self, request, ordering: list[str], model) -> dict | None:
        self.ordering = ordering
        self.fields = [term.lstrip("-") for term in ordering]
        cursor = self._decode(request.query_params.get(self.cursor_query_param), model)
        self.cursor_given = cursor is not None
        return cursor

    def _bounded(self, queryset: QuerySet) -> QuerySet:
        """The rows ``count`` counts: at most one past ``count_limit``, so the count stays bounded."""
        return queryset.order_by().values("pk")[: self.count_limit + 1]

    def _page(self, queryset: QuerySet, cursor: dict | None, bounded: QuerySet) -> QuerySet:
        reverse = bool(cursor and cursor["reverse"])
        page_qs = queryset.order_by(*(_flip(term) for term in self.ordering) if reverse else self.ordering)
        if cursor is not None:
            page_qs = page_qs.filter(_beyond(self.ordering, cursor["values"], reverse=reverse))
        return page_qs.annotate(**{COUNT_COLUMN: BoundedCount(bounded)})[: self.page_size + 1]

    def _finish(self, rows: list, cursor: dict | None, count_all) -> list:
        reverse = bool(cursor and cursor["reverse"])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, self.cursor_given
        self.rows = rows
        count = _value_of(rows[0], COUNT_COLUMN) if rows else count_all()
        self.count, self.count_is_exact = min(count, self.count_limit), count <= self.count_limit
        return rows

    def get_paginated_response(self, data) -> Response:
        if self.legacy is not None:
            response = self.legacy.get_paginated_response(data)
            response.data["count_is_exact"] = True
            return response
        return Response(
            OrderedDict(
                count=self.count,
                count_is_exact=self.count_is_exact,
                next=self._link(self.rows[-1], reverse=False) if self.has_next and self.rows else None,
                previous=self._link(self.rows[0], reverse=True) if self.has_previous and self.rows else None,
                results=data,
            )
        )

    # --- cursors ------------------------------------------------------------------------------------

    def _link(self, row, *, reverse: bool) -> str:
        token = cursor_for([_value_of(row, field) for field in self.fields], self.ordering, reverse=reverse)
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, token)

    def _decode(self, token: str | None, model) -> dict | None:
        if token is None:
            return None
        try:
            if len(token) > 2000:
                raise ValueError("too long")
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(data, dict) or data.get("o") != self.ordering or not isinstance(data.get("r"), bool):
                raise ValueError("another ordering")
            raw = data.get("v")
            if not isinstance(raw, list) or len(raw) != len(self.fields):
                raise ValueError("values")
            values = [_field_value(model, field, value) for field, value in zip(self.fields, raw, strict=True)]
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, DjangoValidationError, FieldDoesNotExist):
            raise exceptions.ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None
        return {"values": values, "reverse": data["r"]}

    # --- schema -------------------------------------------------------------------------------------

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "example": 123,
                    "description": f"Rows in the list, exact up to {COUNT_LIMIT:,}; capped there unless `page` is "
                    "given (see `count_is_exact`).",
                },
                "count_is_exact": {"type": "boolean", "description": "False when `count` was capped."},
                "next": {**link, "example": "http://api.example.org/accounts/?cursor=eyJvIjpb…"},
                "previous": link,
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The opaque position from a `next` or `previous` link (default pagination).",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number instead of a cursor: offset pages with an exact `count` (slower).",
                "schema": {"type": "integer"},
            },
        ]


def _ordering_of(queryset: QuerySet) -> list[str]:
    terms = [term for term in queryset.query.order_by if isinstance(term, str)]
    if not terms or len(terms) != len(queryset.query.order_by):
        raise TypeError("KeysetPagination needs a queryset ordered by field names.")
    return _keyset_ordering(terms)


def _keyset_ordering(terms: list[str]) -> list[str]:
    """The ordering's terms with ``pk`` spelled ``id`` and ``id`` appended as the tie-break."""
    if not terms:
        raise TypeError("KeysetPagination needs an ordering.")
    terms = [("-id" if term.startswith("-") else "id") if term.lstrip("-") == "pk" else term for term in terms]
    if "id" not in {term.lstrip("-") for term in terms}:
        terms.append("-id" if terms[0].startswith("-") else "id")
    return terms


def _flip(term: str) -> str:
    return term[1:] if term.startswith("-") else f"-{term}"


def _beyond(ordering: list[str], values: list, *, reverse: bool) -> Q:
    """Rows after the cursor in this ordering (before it when ``reverse``): a row-value comparison
    spelled out per field, since the directions may differ (``priority,-created_at``)."""
    condition = Q()
    equal: dict = {}
    for term, value in zip(ordering, values, strict=True):
        field = term.lstrip("-")
        descending = term.startswith("-") != reverse
        condition |= Q(**equal, **{f"{field}__{'lt' if descending else 'gt'}": value})
        equal[field] = value
    return condition


def _value_of(row, field: str):
    return row[field] if isinstance(row, dict) else getattr(row, field)


def _field_value(model, field: str, value):
    """A cursor's value converted by the model field (so a bad date is a 400, not a database error); a
    time without an offset is taken in the default time zone, as the ORM would take it."""
    if value is None or isinstance(value, dict | list):
        raise ValueError("a cursor value is a scalar")
    value = model._meta.get_field(field).to_python(value)
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _dict_rows(sql: str, params: list) -> list[dict]:
    """A bound page statement's rows as the ``.values()`` dicts the ORM would make (its columns are named
    as the dict's keys; the keys a cursor needs are ids, texts and times, which need no converter)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def cursor_for(values: list, ordering: list[str], *, reverse: bool = False) -> str:
    """A cursor token as the links carry it (for tests and clients that resume from a stored row)."""
    raw = json.dumps({"o": ordering, "v": values, "r": reverse}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
