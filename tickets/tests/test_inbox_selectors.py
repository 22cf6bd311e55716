"""The inbox's reads (``tickets.inbox``): what each built-in view holds, that an agent only ever counts their
own scope, that every count comes from one query, and that a saved view's filters are checked against the
list's vocabulary and count exactly what the list shows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tickets import inbox
from tickets.models import SavedView, Ticket
from tickets.selectors import ticket_queryset_for_user
from tickets.services import ticket_assign
from tickets.services.tags import ticket_tag_add
from tickets.tests.factories import CustomerFactory, make_agent, make_ticket

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tickets_ticket_changelist")


def put(ticket: Ticket, **fields) -> Ticket:
    """Test set-up only: a ticket straight into a state (status, SLA clocks) without the services."""
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def world(department, other_department, agent):
    """Tickets of the agent's queue (``x``), of an unrouted one and of another queue (``y``), one per view."""
    now = timezone.now()
    colleague = make_agent(department, username="colleague")
    stranger = make_agent(other_department, username="stranger")

    def ticket(name, *, dept=department, assignee=None, **fields):
        created = make_ticket(department=dept, subject=f"{name} subject", customer=CustomerFactory(name=name))
        if assignee is not None:
            ticket_assign(ticket=created, assignee=assignee, actor=assignee)
        return put(created, **fields) if fields else created

    x = {
        "mine_new": ticket("mine_new", assignee=agent),
        "mine_pending": ticket("mine_pending", assignee=agent, status="pending", sla_paused_at=now),
        "unassigned": ticket("unassigned", status="open"),
        "colleague": ticket("colleague", assignee=colleague, status="open"),
        "escalated": ticket("escalated", status="open", escalated=True),
        "at_risk": ticket("at_risk", status="open", first_response_due_at=now + dt.timedelta(minutes=30)),
        "resolution_soon": ticket(
            "resolution_soon",
            status="open",
            first_response_at=now - dt.timedelta(hours=1),
            resolution_due_at=now + dt.timedelta(minutes=20),
        ),
        "breached": ticket("breached", status="open", first_response_breached=True),
        "overdue": ticket("overdue", status="new", first_response_due_at=now - dt.timedelta(minutes=5)),
        "resolved_recent": ticket("resolved_recent", status="resolved", resolved_at=now - dt.timedelta(days=2)),
        "resolved_old": ticket("resolved_old", status="resolved", resolved_at=now - dt.timedelta(days=10)),
        "closed": ticket("closed", status="closed", resolved_at=now - dt.timedelta(days=1)),
        "unrouted": ticket("unrouted", dept=None, status="open"),
    }
    y = {
        "open": ticket("y_open", dept=other_department, status="open"),
        "stranger": ticket("y_stranger", dept=other_department, assignee=stranger, status="open"),
        "escalated": ticket("y_escalated", dept=other_department, status="open", escalated=True),
        "breached": ticket("y_breached", dept=other_department, status="open", resolution_breached=True),
        "at_risk": ticket(
            "y_at_risk", dept=other_department, status="new", first_response_due_at=now + dt.timedelta(minutes=10)
        ),
        "pending": ticket("y_pending", dept=other_department, status="pending"),
        "resolved": ticket("y_resolved", dept=other_department, status="resolved", resolved_at=now),
    }
    return {"x": x, "y": y, "agent": agent, "colleague": colleague, "stranger": stranger, "now": now}


def members(slug: str, user, now) -> set[str]:
    """Who the view lists for this user (tickets are named after their customer in this world)."""
    scope = ticket_queryset_for_user(user=user).filter(inbox.VIEWS[slug].condition(user, now))
    return set(scope.values_list("customer__name", flat=True))


EXPECTED_FOR_THE_AGENT = {
    "mine": {"mine_new", "mine_pending"},
    "unassigned": {"unassigned", "escalated", "at_risk", "resolution_soon", "breached", "overdue", "unrouted"},
    "open": {
        "mine_new",
        "mine_pending",
        "unassigned",
        "colleague",
        "escalated",
        "at_risk",
        "resolution_soon",
        "breached",
        "overdue",
        "unrouted",
    },
    "escalated": {"escalated"},
    "sla_risk": {"at_risk", "resolution_soon"},
    "sla_breached": {"breached", "overdue"},
    "waiting": {"mine_pending"},
    "resolved": {"resolved_recent", "closed"},
}


@pytest.mark.parametrize("slug", sorted(EXPECTED_FOR_THE_AGENT))
def test_each_view_holds_exactly_its_tickets_of_the_agents_scope(world, slug):
    assert members(slug, world["agent"], world["now"]) == EXPECTED_FOR_THE_AGENT[slug]


def test_an_agent_never_counts_another_departments_tickets(world):
    counts = inbox.inbox_counts(user=world["agent"], now=world["now"])

    assert counts.views == {slug: len(names) for slug, names in EXPECTED_FOR_THE_AGENT.items()}
    for slug in EXPECTED_FOR_THE_AGENT:
        assert not {name for name in members(slug, world["agent"], world["now"]) if name.startswith("y_")}


def test_the_other_departments_agent_counts_theirs_and_the_unrouted_one(world):
    counts = inbox.inbox_counts(user=world["stranger"], now=world["now"])

    assert counts.views["mine"] == 1
    assert members("unassigned", world["stranger"], world["now"]) == {
        "y_open",
        "y_escalated",
        "y_breached",
        "y_at_risk",
        "y_pending",
        "unrouted",
    }
    assert counts.views["unassigned"] == 6
    assert members("escalated", world["stranger"], world["now"]) == {"y_escalated"}
    assert members("resolved", world["stranger"], world["now"]) == {"y_resolved"}


def test_a_manager_counts_every_queue(world, manager):
    counts = inbox.inbox_counts(user=manager, now=world["now"])

    assert counts.views["escalated"] == 2
    assert counts.views["sla_breached"] == 3
    assert counts.views["waiting"] == 2


def test_every_count_and_the_changes_since_the_list_loaded_are_one_query(world):
    agent = world["agent"]
    views = [
        SavedView.objects.create(owner=agent, name=f"v{i}", query=query)
        for i, query in enumerate(["priority__exact=high", "view=mine&q=mine", "status__exact=closed"])
    ]
    agent.has_perm("tickets.view_ticket")  # the request has loaded the permissions before any view runs

    with CaptureQueriesContext(connection) as queries:
        counts = inbox.inbox_counts(
            user=agent, saved_views=views, changed_since=world["now"] - dt.timedelta(hours=1), now=world["now"]
        )

    assert len(queries.captured_queries) == 1
    assert counts.saved == {views[0].pk: 0, views[1].pk: 2, views[2].pk: 1}
    assert counts.changed == 13  # every ticket of the agent's scope changed during the set-up


def test_the_console_opens_on_mine_or_on_unassigned_when_mine_is_empty(world, department):
    assert inbox.landing_view(user=world["agent"]) == "mine"
    assert inbox.landing_view(user=make_agent(department, username="newcomer")) == "unassigned"


# --- the filter vocabulary ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("view=mine", "view=mine"),
        ("?priority__exact=high&view=open", "view=open&priority__exact=high"),
        ("escalated__exact=true&department__isnull=1", "department__isnull=True&escalated__exact=1"),
        ("q=+sync++android+&o=-9", "q=sync+android&o=-9"),
        ("assigned=me&p=3&_facets=1&tag=0012", "assigned=me&tag=12"),
        ("sla=ok&channel__exact=email&status__exact=pending", "status__exact=pending&sla=ok&channel__exact=email"),
    ],
)
def test_a_view_query_is_made_canonical(query, canonical):
    assert inbox.view_query_clean(query) == canonical


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("customer__password__startswith=a", "cannot be part of a saved view: customer__password__startswith"),
        ("status__exact=deleted", "Unknown value “deleted” for status"),
        ("view=everything", "Unknown value “everything” for view"),
        ("department__id__exact=1;DROP", "is not a number"),
        ("tag=-1", "is not a number"),
        ("status__exact=new&status__exact=open", "given more than once"),
        ("created_at__year=2024", "cannot be part of a saved view"),
        ("o=1;2", "is not an order"),
        ("q=" + "x" * 201, "longer than 200"),
        ("escalated__exact=maybe", "neither yes nor no"),
    ],
)
def test_a_view_query_outside_the_vocabulary_is_refused(query, message):
    with pytest.raises(inbox.FilterError, match=message):
        inbox.view_query_clean(query)


# The count beside a view is what the list shows when it is opened: each key, through the list itself.
EQUIVALENT_QUERIES = [
    "view=mine",
    "view=unassigned",
    "view=open",
    "view=escalated",
    "view=sla_risk",
    "view=sla_breached",
    "view=waiting",
    "view=resolved",
    "view=all",
    "status__exact=closed",
    "status__exact=open&priority__exact=normal",
    "assigned=none",
    "assigned=others",
    "assigned=me&view=open",
    "escalated__exact=1",
    "escalated__exact=0",
    "sla=breached",
    "sla=ok",
    "department__isnull=True",
    "channel__exact=chat",
    "q=subject",
    'q="mine_new"',
    "q=at_risk subject",
    "tag=TAG",
    "tag=TAG&view=all",
]


@pytest.mark.parametrize("query", EQUIVALENT_QUERIES)
def test_a_saved_views_count_is_what_the_list_shows(world, client, query):
    agent = world["agent"]
    tagged = [world["x"]["mine_new"], world["x"]["closed"], world["x"]["unassigned"], world["y"]["open"]]
    tag = None
    for ticket in tagged:
        tag = ticket_tag_add(ticket=ticket, name="refund", actor=None)
    query = query.replace("TAG", str(tag.pk))
    view = SavedView.objects.create(owner=agent, name="v", query=inbox.view_query_clean(query))
    client.force_login(agent)

    response = client.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    counted = inbox.inbox_counts(user=agent, saved_views=[view]).saved[view.pk]
    assert counted == response.context["cl"].result_count
    assert {t.reference for t in response.context["cl"].result_list} <= set(
        ticket_queryset_for_user(user=agent).values_list("reference", flat=True)
    )
