"""The ticket page laid out for work: the conversation and the reply box first, a side column (customer,
triage, SLA clocks, AI, articles), the model's fields under "Details", and the previous/next ticket of the
list the agent came from — Django's test client against the real database (and, for the articles, the
real embedding model)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.urls import reverse

from knowledge import services as kb_services
from tickets import services
from tickets.admin.ticket_page import sla_clocks
from tickets.models import Ticket
from tickets.tests.factories import CustomerFactory, make_agent, make_ticket, set_status


def change_url(ticket: Ticket, filters: str = "", **params) -> str:
    query = {"_changelist_filters": filters} if filters else {}
    query.update(params)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    return f"{url}?{urlencode(query)}" if query else url


def nav_link(html: str, which: str) -> str:
    match = re.search(rf'<a href="([^"]+)" rel="{which}" data-sf-nav', html)
    return match.group(1).replace("&amp;", "&") if match else ""


def linked_ticket(url: str) -> int:
    return int(re.search(r"/ticket/(\d+)/change/", url).group(1))


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


# --- the layout ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_conversation_comes_first_and_the_model_fields_wait_under_details(agent_client, ticket):
    html = agent_client.get(change_url(ticket)).content.decode()

    main, side, details = html.index('class="sf-main"'), html.index('class="sf-side"'), html.index("sf-details")
    assert html.index('id="messages"') > main
    assert html.index('id="sf-reply"') < side
    assert main < side < details
    tail = html[details:]
    assert "Audit log" in tail
    assert "First response due at" in tail
    assert "<details" in html[details - 20 : details]
    # the triage fields exist once, in the side column, and belong to the admin's form from there
    assert html.count('id="id_category"') == 1
    assert side < html.index('id="id_category"') < details
    assert re.search(r'<select name="priority"[^>]*form="ticket_form"', html)
    assert "{% block" not in html
    assert "sf_presence" not in html


@pytest.mark.django_db
def test_the_side_column_shows_the_customer_vip_flag_sla_clocks_and_summary(agent_client, department):
    customer = CustomerFactory(name="Ada Lovelace", email="ada@example.com", is_vip=True)
    ticket = make_ticket(department=department, customer=customer)
    Ticket.objects.filter(pk=ticket.pk).update(ai_summary="Cannot sign in since the update")

    html = agent_client.get(change_url(ticket)).content.decode()

    side = html[html.index('class="sf-side"') :]
    assert 'sf-badge-vip">VIP<' in side
    assert 'href="mailto:ada@example.com"' in side
    assert "First response" in side
    assert "Due in 3" in side
    assert "Cannot sign in since the update" in side
    assert "Earlier conversations with Ada Lovelace" in side


@pytest.mark.django_db
def test_the_triage_is_corrected_from_the_side_column_and_the_agent_stays_on_the_ticket(agent_client, ticket):
    page = agent_client.get(change_url(ticket, "status__exact=new"))
    management = dict(re.findall(r'name="((?:events|ai_runs)-[A-Z_]+)" value="(\d*)"', page.content.decode()))
    data = {
        "category": "billing",
        "priority": "high",
        "department": ticket.department_id,
        "sentiment": "",
        "language": "",
    }

    response = agent_client.post(change_url(ticket, "status__exact=new"), {**data, **management, "_continue": "1"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert urlsplit(response["Location"]).path == change_url(ticket)
    assert parse_qs(urlsplit(response["Location"]).query)["_changelist_filters"] == ["status__exact=new"]
    ticket.refresh_from_db()
    assert (ticket.category, ticket.priority) == ("billing", "high")
    assert ticket.events.filter(kind="priority_changed", to_value="high").exists()


@pytest.mark.django_db
def test_a_closed_ticket_has_no_reply_box(agent_client, ticket):
    services.ticket_close(ticket=ticket)
    html = agent_client.get(change_url(ticket)).content.decode()
    assert 'id="sf-reply"' not in html
    assert "the thread is read-only" in html


# --- SLA clocks ------------------------------------------------------------------------------------------


NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"first_response_due_at": NOW + dt.timedelta(minutes=30), "resolution_due_at": NOW + dt.timedelta(hours=5)},
            [("soon", "Due in 30\xa0minutes"), ("running", "Due in 5\xa0hours")],
        ),
        (
            {"first_response_due_at": NOW - dt.timedelta(hours=2), "resolution_due_at": NOW + dt.timedelta(hours=1)},
            [("overdue", "Overdue by 2\xa0hours"), ("running", "Due in 1\xa0hour")],
        ),
        (
            {
                "first_response_at": NOW - dt.timedelta(hours=3),
                "first_response_breached": True,
                "sla_paused_at": NOW - dt.timedelta(minutes=45),
                "resolution_due_at": NOW - dt.timedelta(hours=1),
            },
            [("breached", "Answered late"), ("paused", "Paused: waiting on the customer for 45\xa0minutes")],
        ),
        (
            {"first_response_at": NOW - dt.timedelta(hours=3), "resolved_at": NOW - dt.timedelta(hours=1)},
            [("met", "Answered in time"), ("met", "Resolved in time")],
        ),
        ({}, [("none", "No target (no SLA for this queue)")] * 2),
    ],
)
def test_sla_clocks_say_what_is_due_met_late_or_paused(fields, expected):
    ticket = Ticket(**fields)
    assert [(c.state, c.text) for c in sla_clocks(ticket, NOW)] == expected


# --- relevant articles: one entry per article ----------------------------------------------------------


@pytest.mark.django_db
def test_relevant_articles_are_listed_once_each_with_their_best_passage(
    agent_client, department, django_capture_on_commit_callbacks
):
    sections = "\n\n".join(
        f"## Refund case {n}\n\nA refund for a double charge on your card takes {n + 3} business days to arrive."
        for n in range(6)
    )
    with django_capture_on_commit_callbacks(execute=True):
        kb_services.article_save(
            title="Refunds for double charges", slug="refunds", body=sections, status="published", reindex="now"
        )
        kb_services.article_save(
            title="Why was I charged twice?",
            slug="charged-twice",
            body="## Duplicate charges\n\nA second charge on your card is a pending authorisation; refund in 3 days.",
            status="published",
            reindex="now",
        )
    ticket = make_ticket(department=department, subject="Double charge", body="I was charged twice, I want a refund")

    html = agent_client.get(reverse("admin:tickets_ticket_passages", args=[ticket.pk])).content.decode()

    titles = re.findall(r'rel="noopener">([^<]+)</a>', html)
    assert sorted(titles) == ["Refunds for double charges", "Why was I charged twice?"]
    assert re.search(r"\(and [1-5] more passages?\)", html)


# --- previous / next in the agent's list --------------------------------------------------------------------


@pytest.fixture
def queue(department, other_department):
    """Five tickets of the agent's queue (oldest first: the list shows the newest first) and, interleaved,
    tickets of a queue the agent does not work."""
    tickets = []
    for n in range(5):
        tickets.append(make_ticket(department=department, subject=f"Mine {n}", priority="high" if n % 2 else "low"))
        make_ticket(department=other_department, subject=f"Not mine {n}")
    return tickets


@pytest.mark.django_db
def test_next_and_previous_follow_the_lists_order_within_the_agents_queues(agent_client, queue):
    html = agent_client.get(change_url(queue[2])).content.decode()

    assert linked_ticket(nav_link(html, "next")) == queue[1].pk  # newest first: 4 3 [2] 1 0
    assert linked_ticket(nav_link(html, "prev")) == queue[3].pk
    assert "3 of 5" in html


@pytest.mark.django_db
def test_next_keeps_the_lists_filters_search_and_sort(agent_client, queue):
    filters = "priority__exact=high"
    html = agent_client.get(change_url(queue[3], filters)).content.decode()
    assert linked_ticket(nav_link(html, "next")) == queue[1].pk  # high ones only: 3 1
    assert nav_link(html, "prev") == ""
    assert parse_qs(urlsplit(nav_link(html, "next")).query)["_changelist_filters"] == [filters]

    by_subject = "o=2"  # column 2 counting the checkbox as 0: the subject, ascending
    html = agent_client.get(change_url(queue[0], by_subject)).content.decode()
    assert linked_ticket(nav_link(html, "next")) == queue[1].pk
    assert "1 of 5" in html

    html = agent_client.get(change_url(queue[4], urlencode({"q": '"Mine 4"'}))).content.decode()
    assert (nav_link(html, "next"), nav_link(html, "prev")) == ("", "")
    assert "1 of 1" in html


@pytest.mark.django_db
def test_after_resolving_next_is_still_the_ticket_that_followed_it(agent_client, agent, queue):
    page = agent_client.get(change_url(queue[2], "status__exact=new")).content.decode()
    carry = re.search(r'name="_nav" value="([\d.]*)"', page).group(1)

    response = agent_client.post(
        change_url(queue[2], "status__exact=new"), {"_ticket_action": "resolve", "_nav": carry}
    )

    assert response.status_code == 302
    queue[2].refresh_from_db()
    assert queue[2].status == "resolved"  # out of the "new" list now, and updated last
    html = agent_client.get(response["Location"]).content.decode()
    assert linked_ticket(nav_link(html, "next")) == queue[1].pk
    assert linked_ticket(nav_link(html, "prev")) == queue[3].pk
    assert "done (resolve)" in html


@pytest.mark.django_db
def test_a_carried_neighbour_the_agent_may_not_see_is_dropped(agent_client, queue, other_department):
    foreign = make_ticket(department=other_department)
    html = agent_client.get(change_url(queue[2], _nav=f"{foreign.pk}.{queue[1].pk}")).content.decode()
    assert nav_link(html, "prev") == ""
    assert linked_ticket(nav_link(html, "next")) == queue[1].pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "navigable"),
    [
        ("customer__password=x", False),  # a lookup the list does not allow
        ("status__in=%00", False),  # a NUL, which PostgreSQL text cannot hold
        ("created_at__gte=yesterday", False),  # not a date
        ("o=99", True),  # a column that does not exist: the list ignores it, and so does "next"
    ],
)
def test_bad_list_filters_only_cost_the_navigation(agent_client, queue, filters, navigable):
    response = agent_client.get(change_url(queue[2], filters))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Mine 2" in html
    assert bool(nav_link(html, "next")) is navigable


@pytest.mark.django_db
def test_a_ticket_outside_the_list_has_no_neighbours(agent_client, queue):
    set_status(queue[2], "pending")
    html = agent_client.get(change_url(queue[2], "status__exact=new")).content.decode()
    assert (nav_link(html, "next"), nav_link(html, "prev")) == ("", "")
    assert 'data-sf-nav="list"' in html


@pytest.mark.django_db
def test_reply_keeps_the_list_in_the_address(agent_client, queue):
    carry = f"{queue[4].pk}.{queue[0].pk}"  # what the page showed: the low ones, newest first, are 4 2 0
    response = agent_client.post(
        change_url(queue[2], "priority__exact=low"), {"_reply": "1", "body": "On it.", "_nav": carry}
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query == {"_changelist_filters": ["priority__exact=low"], "_nav": [carry]}


@pytest.mark.django_db
def test_an_agent_of_another_queue_gets_nothing_from_the_page_or_its_navigation(client, queue, other_department):
    client.force_login(make_agent(other_department))
    response = client.get(change_url(queue[2]))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert urlsplit(response["Location"]).path == reverse("admin:index")
