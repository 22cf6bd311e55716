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
import json
from collections import OrderedDict

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import IntegerField, Q, QuerySet, Subquery
from rest_framework import exceptions
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

COUNT_LIMIT = 1000
COUNT_COLUMN = "_bounded_count"
BAD_CURSOR = "The cursor is not valid: follow the next/previous links as given, with the same ordering."


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
        self.ordering = ordering
        self.fields = [term.lstrip("-") for term in ordering]
        cursor = self._decode(request.query_params.get(self.cursor_query_param), queryset)
        self.cursor_given = cursor is not None
        reverse = bool(cursor and cursor["reverse"])
        page_qs = queryset.order_by(*(_flip(term) for term in ordering) if reverse else ordering)
        if cursor is not None:
            page_qs = page_qs.filter(_beyond(ordering, cursor["values"], reverse=reverse))
        bounded = queryset.order_by().values("pk")[: self.count_limit + 1]
        rows = list(page_qs.annotate(**{COUNT_COLUMN: BoundedCount(bounded)})[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, self.cursor_given
        self.rows = rows
        count = _value_of(rows[0], COUNT_COLUMN) if rows else bounded.count()
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

    def _decode(self, token: str | None, queryset: QuerySet) -> dict | None:
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
            values = [_field_value(queryset.model, field, value) for field, value in zip(self.fields, raw, strict=True)]
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
    """A cursor's value converted by the model field (so a bad date is a 400, not a database error)."""
    if value is None or isinstance(value, dict | list):
        raise ValueError("a cursor value is a scalar")
    return model._meta.get_field(field).to_python(value)


def cursor_for(values: list, ordering: list[str], *, reverse: bool = False) -> str:
    """A cursor token as the links carry it (for tests and clients that resume from a stored row)."""
    raw = json.dumps({"o": ordering, "v": values, "r": reverse}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
