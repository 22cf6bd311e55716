"""The ticket list's rows written as JSON by PostgreSQL (``serializers.ticket_json``) and spliced in by the
API's renderer: for awkward values — quotes, control characters, U+2028, emoji, NULLs, timestamps with and
without microseconds, costs — every row is the serializer's, key for key and in the same order; the
document is valid JSON (and JavaScript); indented output and a time zone other than UTC still work (the
rows are then made in Python)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import override_settings

from supportflow.api import serializers as s
from supportflow.tests.test_api_lists import client_for
from tickets.models import Customer, Ticket
from tickets.tests.factories import DepartmentFactory, make_manager, make_ticket

pytestmark = pytest.mark.django_db

AWKWARD = [
    'He said "hi" \\ then left',
    "line one\nline two\ttabbed\r\x01\x1f",
    "paragraph\u2028separator\u2029end",
    "émoji 🎉 中文 <b>&amp;</b>",
    "",
]


@pytest.fixture
def manager_and_tickets():
    billing = DepartmentFactory(slug="billing")
    manager = make_manager(billing, username="maria")
    tickets = []
    for i, text in enumerate(AWKWARD):
        ticket = make_ticket(department=billing if i % 2 else None, subject=text)
        Customer.objects.filter(pk=ticket.customer_id).update(name=text, is_vip=bool(i % 2))
        tickets.append(ticket)
    base = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    changes = [
        {"created_at": base, "ai_cost": Decimal("0"), "ai_summary": AWKWARD[2], "csat_score": None},
        {"created_at": base.replace(microsecond=5), "ai_cost": Decimal("0.000001"), "escalated": True},
        {"created_at": base.replace(microsecond=120000), "ai_cost": Decimal("123456.5"), "csat_score": 5},
        {"resolved_at": base, "closed_at": base.replace(microsecond=999999), "escalation_reason": AWKWARD[1]},
        {"first_response_at": base, "first_response_breached": True, "reopen_count": 3, "assignee": manager},
    ]
    for ticket, change in zip(tickets, changes, strict=True):
        Ticket.objects.filter(pk=ticket.pk).update(**change)
    return manager, tickets


def _expected(tickets) -> list[dict]:
    """The serializer's rows, newest first (the list's default order)."""
    fresh = Ticket.objects.select_related("customer", "department", "assignee").filter(pk__in=[t.pk for t in tickets])
    return [s.TicketSerializer(t).data for t in fresh.order_by("-created_at", "-pk")]


def test_every_row_is_the_serializers_key_for_key_and_in_order(manager_and_tickets):
    manager, tickets = manager_and_tickets
    assert s.rows_in_sql()
    response = client_for(manager).get("/api/v1/tickets/")
    assert response.status_code == 200
    body = json.loads(response.content)
    expected = _expected(tickets)
    assert body["results"] == expected
    assert [list(row) for row in body["results"]] == [list(row) for row in expected]
    assert [list(row["customer"]) for row in body["results"]] == [list(row["customer"]) for row in expected]
    assert list(body) == ["count", "count_is_exact", "next", "previous", "results"]
    assert (body["count"], body["count_is_exact"]) == (len(tickets), True)


def test_timestamps_and_costs_read_as_the_serializer_writes_them(manager_and_tickets):
    manager, _ = manager_and_tickets
    rows = json.loads(client_for(manager).get("/api/v1/tickets/?ordering=created_at").content)["results"]
    created = [row["created_at"] for row in rows[:3]]
    assert created == ["2026-03-04T05:06:07Z", "2026-03-04T05:06:07.000005Z", "2026-03-04T05:06:07.120000Z"]
    assert [row["ai_cost"] for row in rows[:3]] == ["0.000000", "0.000001", "123456.500000"]


def test_the_document_is_valid_json_and_javascript(manager_and_tickets):
    manager, _ = manager_and_tickets
    raw = client_for(manager).get("/api/v1/tickets/").content
    assert "\u2028".encode() not in raw
    assert "\u2029".encode() not in raw
    assert b"\\u2028" in raw
    assert raw.startswith(b'{"count":')
    json.loads(raw)


def test_indented_output_is_the_same_document(manager_and_tickets):
    manager, tickets = manager_and_tickets
    response = client_for(manager).get("/api/v1/tickets/", HTTP_ACCEPT="application/json; indent=2")
    assert b'\n  "results": [' in response.content
    assert json.loads(response.content)["results"] == _expected(tickets)


def test_cursor_pages_carry_every_row_once(manager_and_tickets, monkeypatch):
    from supportflow.api.pagination import KeysetPagination

    monkeypatch.setattr(KeysetPagination, "page_size", 2)
    manager, tickets = manager_and_tickets
    client, url, seen = client_for(manager), "/api/v1/tickets/?ordering=-updated_at", []
    while url:
        page = json.loads(client.get(url).content)
        seen += page["results"]
        url = page["next"]
    assert sorted(row["reference"] for row in seen) == sorted(t.reference for t in tickets)


@override_settings(TIME_ZONE="Europe/Paris")
def test_in_another_time_zone_the_rows_are_made_in_python_in_that_zone(manager_and_tickets):
    manager, tickets = manager_and_tickets
    assert not s.rows_in_sql()
    rows = json.loads(client_for(manager).get("/api/v1/tickets/?ordering=created_at").content)["results"]
    assert rows[0]["created_at"] == "2026-03-04T06:06:07+01:00"
    assert sorted(rows, key=lambda r: r["reference"]) == sorted(_expected(tickets), key=lambda r: r["reference"])


def test_rows_come_in_the_pages_order_and_a_ticket_gone_since_is_left_out(manager_and_tickets):
    _, tickets = manager_and_tickets
    ids = [tickets[3].pk, 987654321, tickets[0].pk]  # the middle one deleted between the page and its rows
    rows = [json.loads(row) for row in s.ticket_json_rows(ids)]
    assert [row["reference"] for row in rows] == [tickets[3].reference, tickets[0].reference]
    assert s.ticket_json_rows([]) == []
