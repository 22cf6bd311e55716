"""The ticket list's page statement composed once per shape and bound to each request's values
(``supportflow.compiled``, ``KeysetPagination.paginate_compiled``): the SQL and parameters it runs are
exactly those the ORM compiles from the real values, for every scope, filter set, ordering and cursor
direction; what cannot be bound faithfully is composed as before."""

from __future__ import annotations

import datetime as dt
import itertools
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import Q

from supportflow import compiled
from supportflow.api import pagination
from supportflow.api.pagination import COUNT_COLUMN
from supportflow.compiled import CompiledQueries, compile_with_stand_ins
from supportflow.tests.test_api_lists import client_for
from tickets.models import Ticket
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

pytestmark = pytest.mark.django_db

WHEN = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


# --- the binding itself ----------------------------------------------------------------------------


def _exact(values):
    return Ticket.objects.filter(Q(assignee_id=values[0]) | Q(status=values[1]), created_at__lt=values[2]).order_by(
        "-created_at"
    )[:5]


def test_bound_sql_is_what_the_orm_compiles_from_the_values():
    values = [42, "open", WHEN]
    sql, params = compile_with_stand_ins(values, _exact).bind(values)
    expected_sql, expected_params = _exact(values).query.sql_with_params()
    assert (sql, tuple(params)) == (expected_sql, expected_params)
    other = [7, "pending", WHEN + dt.timedelta(days=3)]  # the same compiled form, other values
    assert tuple(compile_with_stand_ins(values, _exact).bind(other)[1]) == _exact(other).query.sql_with_params()[1]


@pytest.mark.parametrize(
    ("values", "build"),
    [
        (["alic"], lambda v: Ticket.objects.filter(subject__icontains=v[0])),  # a LIKE pattern wraps the value
        ([True], lambda v: Ticket.objects.filter(escalated=v[0])),  # a bool: only two values, put it in the shape
        ([None], lambda v: Ticket.objects.filter(assignee_id=v[0])),  # None changes the SQL (IS NULL)
        ([WHEN.replace(tzinfo=None)], lambda v: Ticket.objects.filter(created_at__lt=v[0])),  # naive time
        ([5], lambda v: Ticket.objects.all()),  # a value the query does not use
        ([5], lambda v: Ticket.objects.filter(subject=v[0])),  # converted by the field (int → str)
        ([5], lambda v: Ticket.objects.none()),  # no statement at all
    ],
)
def test_what_cannot_be_bound_faithfully_is_not(values, build):
    assert compile_with_stand_ins(values, build) is None
    assert CompiledQueries().bind("shape", values, build) is None


def test_the_compiled_form_is_kept_per_shape_and_value_types():
    calls = []
    queries = CompiledQueries()

    def build(values):
        calls.append(values)
        return Ticket.objects.filter(status=values[0])

    queries.bind("s", ["open"], build)
    queries.bind("s", ["closed"], build)
    assert len(calls) == 1  # composed once, with stand-ins
    assert not {"open", "closed"} & set(calls[0])
    assert queries.bind("s", ["closed"], build)[1] == ["closed"]
    queries.bind("other", ["open"], build)
    assert len(calls) == 2


def test_past_its_bound_the_cache_starts_again():
    queries = CompiledQueries(max_shapes=3)
    for shape in range(10):
        queries.bind(shape, ["open"], lambda v: Ticket.objects.filter(status=v[0]))
    assert len(queries._entries) <= 3


# --- the ticket list through the API ---------------------------------------------------------------


@pytest.fixture
def world():
    billing, tech = DepartmentFactory(slug="billing"), DepartmentFactory(slug="tech")
    agent = make_agent(billing, username="alice")
    manager = make_manager(billing, tech, username="maria")
    for i in range(14):
        ticket = make_ticket(
            department=(billing, tech, None)[i % 3],
            subject=f"T{i}",
            priority=("high", "low")[i % 2],
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            escalated=i % 5 == 0, status=("new", "open")[i % 2], assignee=agent if i % 4 == 0 else None
        )
    return {"alice": client_for(agent), "maria": client_for(manager)}


def _page_statements(client, url: str, params: dict) -> tuple[list[tuple[str, tuple]], dict]:
    """The statements that carry the page's bounded count, and the response body."""
    seen = []

    def capture(execute, sql, sql_params, many, context):
        if COUNT_COLUMN in sql:
            seen.append((sql, tuple(sql_params)))
        return execute(sql, sql_params, many, context)

    with connection.execute_wrapper(capture):
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return seen, response.json()


FILTERS = [{}, {"status": "open"}, {"priority": "high", "department": "billing"}, {"assignee": "alice"}]
ESCALATED = [None, "true", "false"]
ORDERINGS = [None, "priority", "-updated_at", "status,-created_at", "nonsense"]


@pytest.mark.parametrize("who", ["alice", "maria"])
def test_every_shape_runs_the_statement_the_orm_would_compose(world, who, monkeypatch):
    client = world[who]
    for given, escalated, ordering in itertools.product(FILTERS, ESCALATED, ORDERINGS):
        params = {
            **given,
            **({"escalated": escalated} if escalated else {}),
            **({"ordering": ordering} if ordering else {}),
        }
        for direction in ("first", "next", "previous"):
            pagination._PAGES.clear()
            monkeypatch.setattr(pagination.KeysetPagination, "page_size", 2)
            url, query = "/api/v1/tickets/", dict(params)
            if direction != "first":
                first = client.get(url, params).json()
                link = first["next"] if direction == "next" else None
                if direction == "previous" and first["next"]:
                    link = client.get(first["next"]).json()["previous"]
                if not link:
                    continue
                query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
            pagination._PAGES.clear()
            bound, bound_body = _page_statements(client, url, query)  # composed with stand-ins, then bound
            again, again_body = _page_statements(client, url, query)  # from the cache
            with monkeypatch.context() as m:
                m.setattr(pagination, "_PAGES", _Never())
                composed, composed_body = _page_statements(client, url, query)  # the ORM, as before
            label = f"{who} {query} {direction}"
            assert len(bound) == len(composed) == 1, label
            assert bound == again, label
            assert [(_page_of(sql), params) for sql, params in bound] == composed, label
            assert bound_body == again_body == composed_body, label


def _page_of(sql: str) -> str:
    """The page's own statement inside the one that also writes its rows."""
    head = f') AS "{pagination.ROW_COLUMN}" FROM ('
    assert sql.startswith("SELECT page.*, ("), sql[:200]
    assert head in sql, sql[:200]
    return sql[sql.index(head) + len(head) : sql.rindex(") page ORDER BY ")]


class _Never(CompiledQueries):
    def bind(self, shape, values, build):
        return None


def test_a_search_is_composed_every_time_and_still_filtered(world):
    pagination._PAGES.clear()
    body = world["maria"].get("/api/v1/tickets/", {"search": "T1"}).json()
    assert {row["subject"] for row in body["results"]} == {"T1", "T10", "T11", "T12", "T13"}
    assert not pagination._PAGES._entries


def test_a_caller_who_may_see_no_ticket_is_refused_before_any_page_is_composed(world):
    from django.contrib.auth import get_user_model

    pagination._PAGES.clear()
    nobody = get_user_model().objects.create_user("nobody", is_staff=True)  # staff, but no ticket permission
    assert client_for(nobody).get("/api/v1/tickets/").status_code == 403
    assert not pagination._PAGES._entries


def test_compiled_module_keeps_no_request_value(world):
    """The cache holds the SQL and the stand-ins, never a caller's id, filter or cursor."""
    pagination._PAGES.clear()
    world["alice"].get("/api/v1/tickets/", {"status": "open", "department": "billing"})
    for entry in pagination._PAGES._entries.values():
        assert entry is not None
        assert not {"open", "billing"} & set(entry.params)
        assert all((isinstance(p, int) and p < -(10**14)) or compiled._MARK in str(p) for p in entry.params)
