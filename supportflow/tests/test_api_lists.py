"""The ticket and message lists: the same fields as the serializers, keyset pages that neither skip nor
repeat a row (ties included) and stay inside the caller's queues, a bounded count, the old ``?page=``
pages, and a clear 400 for a cursor that is not one of ours."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from supportflow.api import serializers as s
from supportflow.api.keys import api_key_create
from supportflow.api.pagination import KeysetPagination, cursor_for
from tickets import services
from tickets.models import Message, Ticket
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    billing, tech = DepartmentFactory(slug="billing"), DepartmentFactory(slug="tech")
    agent = make_agent(billing, username="alice")
    manager = make_manager(billing, tech, username="maria")
    mine = [make_ticket(department=billing, subject=f"Mine {i}", priority=("high", "low")[i % 2]) for i in range(31)]
    theirs = [make_ticket(department=tech, subject=f"Theirs {i}") for i in range(7)]
    same = timezone.now() - dt.timedelta(days=1)
    Ticket.objects.filter(pk__in=[t.pk for t in mine[10:16]]).update(created_at=same)  # a tie across pages
    return {"agent": agent, "manager": manager, "mine": mine, "theirs": theirs}


def client_for(user) -> APIClient:
    _, secret = api_key_create(name="test", user=user, scopes=["tickets:read", "tickets:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def walk(client, url, *, params=None, via="next") -> list[dict]:
    """Every page from ``url``, following ``via`` links; returns the pages' bodies."""
    pages = [client.get(url, params or {}).json()]
    while pages[-1][via]:
        assert len(pages) < 50, "the links never end"
        pages.append(client.get(pages[-1][via]).json())
    return pages


def refs(pages) -> list[str]:
    return [t["reference"] for page in pages for t in page["results"]]


def test_list_rows_equal_the_serializers_field_for_field(world):
    ticket = world["mine"][0]
    services.ticket_assign(ticket=ticket, assignee=world["agent"], actor=world["agent"])
    Ticket.objects.filter(pk=ticket.pk).update(
        ai_cost=Decimal("0.012345"), csat_score=4, resolved_at=timezone.now(), category="billing"
    )
    ticket = Ticket.objects.select_related("customer", "department", "assignee").get(pk=ticket.pk)
    rows = s.ticket_rows(list(Ticket.objects.filter(pk=ticket.pk).values(*s.TICKET_COLUMNS)))
    assert rows == [s.TicketSerializer(ticket).data]
    assert json.dumps(rows[0]) == json.dumps(s.TicketSerializer(ticket).data)  # same keys, same order

    world["agent"].first_name, world["agent"].last_name = "Alice", "Liddell"
    world["agent"].save()
    services.message_create(
        ticket=ticket, author_kind=Message.AuthorKind.AGENT, author_user=world["agent"], body="On it", is_internal=True
    )
    services.message_create(
        ticket=ticket, author_kind=Message.AuthorKind.AGENT, author_user=world["manager"], body="Noted"
    )
    messages = Message.objects.filter(ticket=ticket).select_related("author_user").order_by("seq")
    fast = s.message_rows(list(Message.objects.filter(ticket=ticket).order_by("seq").values(*s.MESSAGE_COLUMNS)))
    assert fast == s.MessageSerializer(messages, many=True).data
    assert [m["author"] for m in fast] == ["Customer", "Alice Liddell", "maria"]


def test_cursor_pages_cover_the_agents_queue_once_each_in_order_and_nothing_else(world):
    client = client_for(world["agent"])
    pages = walk(client, "/api/v1/tickets/")
    expected = list(Ticket.objects.filter(department__slug="billing").order_by("-created_at", "-pk"))
    assert refs(pages) == [t.reference for t in expected]
    assert not {t.reference for t in world["theirs"]} & set(refs(pages))
    assert [len(p["results"]) for p in pages] == [25, 6]
    assert [(p["count"], p["count_is_exact"]) for p in pages] == [(31, True), (31, True)]
    assert "cursor=" in pages[0]["next"]
    assert (pages[0]["previous"], pages[1]["next"]) == (None, None)

    back = walk(client, pages[1]["previous"], via="previous")  # the previous link of page 2 is page 1
    assert refs(back) == refs(pages[:1])


@pytest.mark.parametrize("ordering", ["priority", "-priority", "status,-updated_at", "created_at", "-updated_at"])
def test_every_ordering_pages_without_gaps_or_repeats(world, ordering):
    client = client_for(world["manager"])
    pages = walk(client, "/api/v1/tickets/", params={"ordering": ordering})
    terms = [*ordering.split(","), "-pk" if ordering.startswith("-") else "pk"]
    assert refs(pages) == list(Ticket.objects.order_by(*terms).values_list("reference", flat=True))


def test_filters_and_search_apply_to_every_page(world):
    client = client_for(world["agent"])
    pages = walk(client, "/api/v1/tickets/", params={"priority": "high", "search": "Mine"})
    high = Ticket.objects.filter(department__slug="billing", priority="high").order_by("-created_at", "-pk")
    assert refs(pages) == list(high.values_list("reference", flat=True))
    assert len(refs(pages)) == 16
    pages = walk(client, "/api/v1/tickets/", params={"search": "Theirs"})
    assert refs(pages) == []  # another queue's tickets: not found by search either


def test_count_is_bounded_and_says_so(world, monkeypatch):
    monkeypatch.setattr(KeysetPagination, "count_limit", 10)
    body = client_for(world["agent"]).get("/api/v1/tickets/").json()
    assert (body["count"], body["count_is_exact"], len(body["results"])) == (10, False, 25)


def test_page_numbers_still_work_with_the_exact_count(world, monkeypatch):
    monkeypatch.setattr(KeysetPagination, "count_limit", 10)
    client = client_for(world["agent"])
    first = client.get("/api/v1/tickets/", {"page": 1}).json()
    assert (first["count"], first["count_is_exact"]) == (31, True)
    assert first["next"].endswith("/api/v1/tickets/?page=2")
    second = client.get(first["next"]).json()
    assert refs([first, second]) == refs(walk(client, "/api/v1/tickets/"))
    assert client.get("/api/v1/tickets/", {"page": 9}).status_code == 404


def test_a_list_costs_the_same_queries_for_any_number_of_rows(world, django_assert_max_num_queries):
    client = client_for(world["agent"])
    client.get("/api/v1/tickets/")
    # key + user, role, permissions (2), bounded count, page; the key's last-used stamp once a minute
    with django_assert_max_num_queries(7):
        assert len(client.get("/api/v1/tickets/").json()["results"]) == 25


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "e30",  # {}
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        cursor_for(["2026-01-01T00:00:00+00:00", 5], ["created_at", "id"]),  # another ordering
        cursor_for(["not a date", 5], ["-created_at", "-id"]),
        cursor_for(["2026-01-01T00:00:00+00:00", "x"], ["-created_at", "-id"]),
        cursor_for(["2026-01-01T00:00:00+00:00", None], ["-created_at", "-id"]),
        cursor_for(["2026-01-01T00:00:00+00:00"], ["-created_at", "-id"]),
        "A" * 5000,
    ],
)
def test_a_malformed_cursor_is_a_clear_400(world, cursor):
    response = client_for(world["agent"]).get("/api/v1/tickets/", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["cursor"] == [
        "The cursor is not valid: follow the next/previous links as given, with the same ordering."
    ]


def test_a_cursor_from_the_managers_list_shows_an_agent_nothing_of_other_queues(world):
    manager_pages = walk(client_for(world["manager"]), "/api/v1/tickets/")
    agent_view = client_for(world["agent"]).get(manager_pages[0]["next"]).json()
    assert set(refs([agent_view])) <= {t.reference for t in world["mine"]}


def test_messages_are_paged_by_cursor_with_internal_notes(world):
    ticket = world["mine"][0]
    for i in range(29):
        services.message_create(
            ticket=ticket,
            author_kind=Message.AuthorKind.AGENT,
            author_user=world["agent"],
            body=f"reply {i}",
            is_internal=i == 3,
        )
    client = client_for(world["agent"])
    pages = walk(client, f"/api/v1/tickets/{ticket.reference}/messages/")
    assert [m["seq"] for p in pages for m in p["results"]] == list(range(1, 31))
    assert [(p["count"], len(p["results"])) for p in pages] == [(30, 25), (30, 5)]
    assert [m["is_internal"] for m in pages[0]["results"]].count(True) == 1
    other = world["theirs"][0]
    assert client.get(f"/api/v1/tickets/{other.reference}/messages/").status_code == 404
    assert client.get(f"/api/v1/tickets/{ticket.reference}/messages/", {"cursor": "nope"}).status_code == 400


def test_the_schema_describes_the_pages(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ("/api/v1/tickets/", "/api/v1/tickets/{reference}/messages/"):
        operation = schema["paths"][path]["get"]
        assert {"cursor", "page"} <= {p["name"] for p in operation["parameters"]}, path
        body = operation["responses"]["200"]["content"]["application/json"]["schema"]
        page = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        assert {"count", "count_is_exact", "next", "previous", "results"} == set(page["properties"]), path
