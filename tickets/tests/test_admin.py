"""The agent console, through Django's test client against the real database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tickets import services
from tickets.models import Message, Ticket
from tickets.tests.factories import CustomerFactory, UserFactory, make_agent, make_ticket

CHANGELIST = reverse("admin:tickets_ticket_changelist")
ALL_TICKETS = {"view": "all"}  # the bare list sends an agent on to their inbox (Mine or Unassigned)


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.mark.django_db
def test_ticket_page_shows_the_thread_with_internal_notes(agent_client, ticket, agent):
    services.message_create(
        ticket=ticket, author_kind="agent", author_user=agent, body="Private hint", is_internal=True
    )

    response = agent_client.get(change_url(ticket))

    assert response.status_code == 200
    html = response.content.decode()
    assert "It broke." in html
    assert "Private hint" in html
    assert "Internal note" in html
    assert ticket.reference in html


@pytest.mark.django_db
def test_agent_reply_is_stored_through_the_service_with_events(agent_client, ticket, agent):
    response = agent_client.post(change_url(ticket), {"_reply": "1", "body": "We are on it.", "then_status": ""})

    assert response.status_code == 302
    reply = ticket.messages.get(seq=2)
    assert (reply.author_kind, reply.author_user, reply.body, reply.is_internal) == (
        "agent",
        agent,
        "We are on it.",
        False,
    )
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.first_response_at == reply.created_at
    events = list(ticket.events.values_list("kind", "actor_id"))
    assert ("first_response", agent.pk) in events
    assert ("status_changed", agent.pk) in events


@pytest.mark.django_db
def test_internal_note_does_not_count_as_a_response(agent_client, ticket):
    agent_client.post(change_url(ticket), {"_reply": "1", "body": "Check logs", "is_internal": "on"})

    note = ticket.messages.get(seq=2)
    assert note.is_internal is True
    ticket.refresh_from_db()
    assert (ticket.first_response_at, ticket.status) == (None, "new")


@pytest.mark.django_db
def test_empty_reply_is_refused_with_a_message_and_stores_nothing(agent_client, ticket):
    response = agent_client.post(change_url(ticket), {"_reply": "1", "body": "   "})

    assert response.status_code == 200
    assert "Write something before sending." in response.content.decode()
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_too_long_reply_is_refused_and_the_text_is_kept_in_the_box(agent_client, ticket):
    body = "word " * 2500
    response = agent_client.post(change_url(ticket), {"_reply": "1", "body": body})

    assert response.status_code == 200
    html = response.content.decode()
    assert "at most 10,000 characters" in html
    assert "word word word" in html  # the agent's text is still in the box: nothing lost
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_reply_and_resolve(agent_client, ticket):
    agent_client.post(change_url(ticket), {"_reply": "1", "body": "Fixed!", "then_status": "resolved"})
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "expected_status"), [("resolve", "resolved"), ("close", "closed"), ("pending", "pending")]
)
def test_ticket_page_buttons_call_the_state_machine(agent_client, ticket, action, expected_status):
    response = agent_client.post(change_url(ticket), {"_ticket_action": action})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == expected_status


@pytest.mark.django_db
def test_illegal_button_shows_the_rule_and_changes_nothing(agent_client, ticket):
    services.ticket_close(ticket=ticket)
    response = agent_client.post(change_url(ticket), {"_ticket_action": "reopen"}, follow=True)
    assert "Only resolved tickets can be reopened" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "closed"


@pytest.mark.django_db
def test_escalate_button_needs_a_reason(agent_client, ticket):
    agent_client.post(change_url(ticket), {"_ticket_action": "escalate", "reason": ""})
    ticket.refresh_from_db()
    assert ticket.escalated is False

    agent_client.post(change_url(ticket), {"_ticket_action": "escalate", "reason": "Angry VIP"})
    ticket.refresh_from_db()
    assert (ticket.escalated, ticket.escalation_reason) == (True, "Angry VIP")


@pytest.mark.django_db
def test_triage_correction_in_the_form_goes_through_the_service(agent_client, ticket, other_department, agent):
    data = {
        "category": "billing",
        "priority": "urgent",
        "department": other_department.pk,
        "sentiment": "negative",
        "language": "en",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "ai_runs-TOTAL_FORMS": "0",
        "ai_runs-INITIAL_FORMS": "0",
    }
    response = agent_client.post(change_url(ticket), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    ticket.refresh_from_db()
    assert (ticket.category, ticket.priority, ticket.department) == ("billing", "urgent", other_department)
    changes = set(ticket.events.exclude(kind__in=["created"]).values_list("kind", "field", "to_value"))
    assert ("triage_changed", "category", "billing") in changes
    assert ("priority_changed", "priority", "urgent") in changes
    assert ("department_changed", "department", str(other_department)) in changes


@pytest.mark.django_db
def test_assign_to_me_action_from_the_list(agent_client, agent, department):
    tickets = [make_ticket(department=department) for _ in range(3)]
    agent_client.post(CHANGELIST, {"action": "assign_to_me", "_selected_action": [t.pk for t in tickets]})
    assert Ticket.objects.filter(assignee=agent).count() == 3


@pytest.mark.django_db
def test_agent_cannot_assign_to_someone_else(agent, department):
    colleague = make_agent(department)
    ticket = make_ticket(department=department)
    with pytest.raises(services.TicketRuleError, match="yourself only"):
        services.ticket_assign(ticket=ticket, assignee=colleague, actor=agent)
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert not ticket.events.filter(kind="assigned").exists()


@pytest.mark.django_db
def test_manager_can_assign_to_an_agent_of_the_queue(manager, agent, ticket):
    services.ticket_assign(ticket=ticket, assignee=agent, actor=manager)
    ticket.refresh_from_db()
    assert ticket.assignee == agent


@pytest.mark.django_db
def test_assignee_must_work_the_queue(manager, other_department, ticket):
    outsider = make_agent(other_department)
    with pytest.raises(services.TicketRuleError, match="does not work"):
        services.ticket_assign(ticket=ticket, assignee=outsider, actor=manager)


@pytest.mark.django_db
def test_non_staff_user_is_denied_and_nothing_is_stored(client, ticket):
    client.force_login(UserFactory(is_staff=False))

    page = client.get(change_url(ticket))
    post = client.post(change_url(ticket), {"_reply": "1", "body": "sneaky"})

    assert page.status_code == 302
    assert "/admin/login/" in page["Location"]
    assert post.status_code == 302
    assert "/admin/login/" in post["Location"]
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client, ticket):
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_agent_of_another_queue_cannot_see_or_reply(client, ticket, other_department):
    outsider = make_agent(other_department)
    client.force_login(outsider)

    listing = client.get(CHANGELIST, ALL_TICKETS)
    page = client.get(change_url(ticket))
    post = client.post(change_url(ticket), {"_reply": "1", "body": "not my queue"})
    action = client.post(change_url(ticket), {"_ticket_action": "close"})

    assert ticket.reference not in listing.content.decode()
    assert page.status_code == 302  # the admin's "does not exist" redirect, revealing nothing
    assert post.status_code == 404
    assert action.status_code == 404
    ticket.refresh_from_db()
    assert (ticket.messages.count(), ticket.status) == (1, "new")


@pytest.mark.django_db
def test_manager_sees_every_queue(client, manager, ticket):
    client.force_login(manager)
    assert ticket.reference in client.get(CHANGELIST, ALL_TICKETS).content.decode()


@pytest.mark.django_db
def test_agent_sees_unrouted_tickets_for_triage(agent_client):
    unrouted = make_ticket(department=None)
    assert unrouted.reference in agent_client.get(CHANGELIST, ALL_TICKETS).content.decode()


@pytest.mark.django_db
def test_agent_cannot_delete_tickets_or_edit_sla_policies(agent_client, ticket):
    delete = agent_client.post(reverse("admin:tickets_ticket_delete", args=[ticket.pk]), {"post": "yes"})
    policy_add = agent_client.get(reverse("admin:tickets_slapolicy_add"))
    assert delete.status_code == 403
    assert policy_add.status_code == 403
    assert Ticket.objects.filter(pk=ticket.pk).exists()


@pytest.mark.django_db
def test_ai_runs_are_read_only(agent_client):
    assert agent_client.get(reverse("admin:tickets_airun_add")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["SF-", "' OR 1=1 --", "%_%", "\u202ex", "🙂" * 50])
def test_changelist_search_and_filters_never_error(agent_client, ticket, query):
    assert agent_client.get(CHANGELIST, {"q": query}).status_code == 200
    assert (
        agent_client.get(CHANGELIST, {"sla": "breached", "assigned": "me", "status__exact": "new"}).status_code == 200
    )


@pytest.mark.django_db
def test_changelist_search_with_a_nul_is_a_400_that_says_why(agent_client, ticket):
    # PostgreSQL cannot compare text with NUL: supportflow.middleware.RejectNulMiddleware answers first.
    response = agent_client.get(CHANGELIST, {"q": "\u202e\u0000x"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.django_db
def test_changelist_query_count_does_not_grow_with_rows(client, manager, department):
    client.force_login(manager)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(CHANGELIST, ALL_TICKETS).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(3):
        make_ticket(department=department, customer=CustomerFactory())
    few = count_queries()
    for _ in range(30):
        ticket = make_ticket(department=department, customer=CustomerFactory())
        services.ticket_assign(ticket=ticket, assignee=manager, actor=manager)
    many = count_queries()

    assert few == many
    assert Message.objects.count() == 33


@pytest.mark.django_db
def test_ticket_page_shows_the_customers_earlier_tickets_the_agent_may_see(agent_client, department, other_department):
    customer = CustomerFactory(name="Grace Hopper")
    seen = make_ticket(department=department, customer=customer, subject="Invoices without VAT")
    Ticket.objects.filter(pk=seen.pk).update(status="resolved", csat_score=4, ai_summary="VAT number missing")
    hidden = make_ticket(department=other_department, customer=customer, subject="Legal question from last year")
    current = make_ticket(department=department, customer=customer, subject="Sync stuck")

    html = agent_client.get(change_url(current)).content.decode()

    assert "Earlier conversations with Grace Hopper" in html
    assert seen.reference in html
    assert "VAT number missing" in html
    assert "rated 4/5" in html
    assert hidden.reference not in html  # another queue's ticket stays out of sight
    assert "Legal question from last year" not in html
