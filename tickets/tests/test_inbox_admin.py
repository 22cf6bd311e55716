"""The inbox in the console, through the test client on the real database: where the console opens, the
default list without closed tickets, the views column and its live counts, and a query count that does
not grow from 10 to 1,000 tickets."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tickets.models import SavedView, Tag, Ticket
from tickets.services import ticket_assign
from tickets.services.tags import ticket_tag_add
from tickets.tests.factories import CustomerFactory, make_ticket, set_status

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tickets_ticket_changelist")
CHANGES = reverse("admin:tickets_ticket_changes")


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def count_of(html: str, key: str) -> str:
    match = re.search(rf'id="sf-inbox-count-{key}"[^>]*>([^<]*)<', html)
    assert match, f"no count for {key}"
    return match.group(1)


# --- where the console opens ---------------------------------------------------------------------------


def test_the_list_opens_on_mine_when_the_agent_has_tickets(agent_client, agent, ticket):
    ticket_assign(ticket=ticket, assignee=agent, actor=agent)

    response = agent_client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?view=mine"


def test_the_list_opens_on_unassigned_when_mine_is_empty(agent_client, ticket):
    response = agent_client.get(CHANGELIST)

    assert response["Location"] == f"{CHANGELIST}?view=unassigned"


def test_an_agent_landing_on_the_console_goes_to_the_inbox(agent_client):
    response = agent_client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST


def test_managers_keep_the_console_index(client, manager):
    client.force_login(manager)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert "Queues and tickets" in response.content.decode()  # the index's title


def test_mine_is_selected_with_every_views_count(agent_client, agent, department, other_department):
    mine = make_ticket(department=department)
    ticket_assign(ticket=mine, assignee=agent, actor=agent)
    make_ticket(department=department)
    make_ticket(department=other_department)  # never counted for this agent

    html = agent_client.get(CHANGELIST, {"view": "mine"}).content.decode()

    assert re.search(r'class="sf-inbox-view selected" aria-current="page" data-view="mine"', html)
    assert html.count('aria-current="page"') == 1
    assert (count_of(html, "mine"), count_of(html, "unassigned"), count_of(html, "open")) == ("1", "1", "2")
    assert 'id="sf-inbox-count-all"' not in html  # "All tickets" is not an inbox: no count


# --- the default list leaves closed tickets out --------------------------------------------------------


@pytest.fixture
def open_and_closed(department):
    open_ticket = make_ticket(department=department, subject="Still broken")
    closed = set_status(make_ticket(department=department, subject="Long fixed"), "closed")
    return open_ticket, closed


def listed(response) -> set[str]:
    return {t.reference for t in response.context["cl"].result_list}


def test_a_filtered_list_leaves_closed_tickets_out(agent_client, open_and_closed):
    open_ticket, _closed = open_and_closed

    assert listed(agent_client.get(CHANGELIST, {"priority__exact": "normal"})) == {open_ticket.reference}
    assert listed(agent_client.get(CHANGELIST, {"q": ""})) == {open_ticket.reference}


@pytest.mark.parametrize("params", [{"view": "all"}, {"status__exact": "closed"}, {"view": "resolved"}])
def test_closed_tickets_show_when_asked_for(agent_client, open_and_closed, params):
    _, closed = open_and_closed
    Ticket.objects.filter(pk=closed.pk).update(resolved_at=timezone.now())

    assert closed.reference in listed(agent_client.get(CHANGELIST, params))


def test_an_unknown_view_is_refused_like_any_bad_filter(agent_client, ticket):
    response = agent_client.get(CHANGELIST, {"view": "<script>"})

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_the_customer_admin_links_to_all_of_a_customers_tickets_closed_included(client, manager, open_and_closed):
    client.force_login(manager)
    customer = open_and_closed[1].customer
    customer.email = "a+b@example.com"
    customer.save()

    html = client.get(reverse("admin:tickets_customer_change", args=[customer.pk])).content.decode()

    assert f"{CHANGELIST}?view=all&amp;q=a%2Bb%40example.com" in html


# --- live counts: the list's poll carries them ----------------------------------------------------------


def test_the_poll_brings_every_count_out_of_band(agent_client, agent, department):
    since = timezone.now() - dt.timedelta(minutes=1)
    mine = make_ticket(department=department)
    ticket_assign(ticket=mine, assignee=agent, actor=agent)
    view = SavedView.objects.create(owner=agent, name="Normal ones", query="priority__exact=normal")

    response = agent_client.get(CHANGES, {"since": since.isoformat()})

    html = response.content.decode()
    assert response.status_code == 200
    assert "1 conversation updated" in html
    assert re.search(r'id="sf-inbox-count-mine" hx-swap-oob="true">1<', html)
    assert re.search(rf'id="sf-inbox-count-saved-{view.pk}" hx-swap-oob="true">1<', html)


def test_the_poll_counts_only_the_agents_scope(agent_client, other_department):
    since = timezone.now() - dt.timedelta(minutes=1)
    make_ticket(department=other_department)

    html = agent_client.get(CHANGES, {"since": since.isoformat()}).content.decode()

    assert "updated" not in html
    assert re.search(r'id="sf-inbox-count-open" hx-swap-oob="true">0<', html)


# --- the query count does not grow with the tickets -----------------------------------------------------


def add_tickets(n: int, *, department, agent, tag: Tag, start: int) -> None:
    """Test set-up only: ``n`` tickets in one insert (statuses, assignees, SLA clocks and tags varied)."""
    now = timezone.now()
    customers = [CustomerFactory() for _ in range(5)]
    statuses = ["new", "open", "pending", "resolved", "closed"]
    tickets = Ticket.objects.bulk_create(
        Ticket(
            reference=f"SF-Q{start + i:06d}",
            subject=f"Bulk ticket {start + i}",
            customer=customers[i % 5],
            department=department,
            status=statuses[i % 5],
            priority=["low", "normal", "high", "urgent"][i % 4],
            assignee=agent if i % 3 == 0 else None,
            escalated=i % 7 == 0,
            first_response_due_at=now + dt.timedelta(minutes=(i % 120) - 30),
            resolution_due_at=now + dt.timedelta(hours=(i % 48) - 2),
            resolved_at=now - dt.timedelta(days=i % 10) if statuses[i % 5] in ("resolved", "closed") else None,
        )
        for i in range(n)
    )
    Tag.tickets.through.objects.bulk_create(
        Tag.tickets.through(tag_id=tag.pk, ticket_id=ticket.pk) for ticket in tickets[::4]
    )


def test_the_list_with_counts_and_saved_views_keeps_its_query_count_from_10_to_1000_tickets(
    client, department, agent, manager
):
    """The list page (views column with 8 counts, 2 saved views, tag filter and chips, 50 rows) and its poll."""
    tag = ticket_tag_add(ticket=make_ticket(department=department), name="refund")
    SavedView.objects.create(owner=agent, name="Urgent", query="priority__exact=urgent")
    SavedView.objects.create(owner=manager, name="Refunds", query=f"view=open&tag={tag.pk}", department=department)
    client.force_login(agent)

    def queries(url: str, params: dict) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        return len(ctx.captured_queries)

    def measure() -> tuple[int, int, int]:
        since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
        return (
            queries(CHANGELIST, {"view": "open"}),
            queries(CHANGELIST, {"view": "all", "tag": tag.pk, "q": "Bulk"}),
            queries(CHANGES, {"since": since}),
        )

    add_tickets(9, department=department, agent=agent, tag=tag, start=0)
    assert Ticket.objects.count() == 10
    few = measure()
    add_tickets(990, department=department, agent=agent, tag=tag, start=9)
    assert Ticket.objects.count() == 999 + 1
    many = measure()

    assert few == many
    assert many[0] <= 13, many  # the list page, as measured
    assert many[2] <= 7, many  # the poll
