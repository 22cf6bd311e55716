"""The AI in the agent console (triage panel, "use draft", edit-then-send, discard) and automatic
assignment, through Django's test client and the services, against the real database."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from tickets import services
from tickets.models import AgentProfile, AIDraft, Ticket
from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket


def ai_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_ai", args=[ticket.pk])


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def pending_draft(ticket: Ticket, body: str = "Open Settings → Sync → Reset local cache [1].") -> AIDraft:
    message = ticket.messages.get(seq=1)
    services.ai_reply_record(
        ticket=ticket,
        in_reply_to=message,
        body=body,
        citations=[{"n": 1, "title": "Reset sync", "url": "/help/articles/reset-sync/"}],
        confidence=0.41,
        provider="local",
        model="extractive",
        gate={"threshold": 0.6, "triggers": [{"rule": "Low confidence", "reason": "AI not confident enough"}]},
        send=False,
        escalation_reason="AI not confident enough",
    )
    return AIDraft.objects.get(in_reply_to=message)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.mark.django_db
def test_ticket_page_shows_triage_and_the_waiting_draft_with_its_reason(agent_client, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(
        triage={"category": "sync", "category_confidence": 0.87, "provider": "local", "signals": ["outage"]}
    )
    pending_draft(ticket)
    html = agent_client.get(change_url(ticket)).content.decode()
    assert "sync" in html
    assert "0.87" in html
    assert "Draft reply" in html
    assert "Not sent because: AI not confident enough" in html
    assert "Use draft" in html
    assert "Provider: local" in html


@pytest.mark.django_db
def test_use_draft_sends_it_once_as_the_agents_reply(agent_client, ticket, agent):
    draft = pending_draft(ticket)
    response = agent_client.post(ai_url(ticket), {"draft": draft.pk, "action": "use"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Draft sent to the customer." in response.content.decode()
    reply = ticket.messages.filter(author_kind="agent").get()
    assert (reply.author_user, reply.body) == (agent, draft.body)
    assert reply.citations == draft.citations

    again = agent_client.post(ai_url(ticket), {"draft": draft.pk, "action": "use"})
    assert "already used" in again.content.decode()
    assert ticket.messages.filter(author_kind="agent").count() == 1


@pytest.mark.django_db
def test_edit_before_sending_fills_the_reply_box_and_sends_the_edited_text(agent_client, ticket, agent):
    draft = pending_draft(ticket)
    box = agent_client.post(ai_url(ticket), {"draft": draft.pk, "action": "edit"}).content.decode()
    assert "Reset local cache" in box
    assert f'value="{draft.pk}"' in box

    agent_client.post(change_url(ticket), {"_reply": "1", "body": "Edited: reset the cache.", "draft": draft.pk})
    draft.refresh_from_db()
    assert draft.status == "used"
    assert draft.sent_message.body == "Edited: reset the cache."


@pytest.mark.django_db
def test_discard_and_foreign_drafts(agent_client, ticket, department):
    other_ticket = make_ticket(department=department)
    foreign = pending_draft(other_ticket)
    assert agent_client.post(ai_url(ticket), {"draft": foreign.pk, "action": "use"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "pending"

    draft = pending_draft(ticket)
    agent_client.post(ai_url(ticket), {"draft": draft.pk, "action": "discard"})
    draft.refresh_from_db()
    assert draft.status == "discarded"


@pytest.mark.django_db
def test_an_agent_of_another_queue_cannot_see_or_use_the_draft(client, ticket, other_department):
    outsider = make_agent(other_department)
    client.force_login(outsider)
    draft = pending_draft(ticket)
    assert client.get(ai_url(ticket)).status_code == 404
    assert client.post(ai_url(ticket), {"draft": draft.pk, "action": "use"}).status_code == 404
    draft.refresh_from_db()
    assert draft.status == "pending"


@pytest.mark.django_db
def test_escalation_rules_are_editable_by_managers_only(client, manager, agent):
    client.force_login(agent)
    assert client.get(reverse("admin:tickets_escalationrule_add")).status_code == 403
    client.force_login(manager)
    assert client.get(reverse("admin:tickets_escalationrule_changelist")).status_code == 200
    assert (
        "Customer asks for a human" in client.get(reverse("admin:tickets_escalationrule_changelist")).content.decode()
    )


# --- automatic assignment ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_auto_assign_picks_the_least_loaded_available_agent_within_capacity():
    queue = DepartmentFactory()
    busy, free, away = make_agent(queue), make_agent(queue), make_agent(queue)
    AgentProfile.objects.filter(user=away).update(is_available=False)
    for _ in range(2):
        services.ticket_assign(ticket=make_ticket(department=queue), assignee=busy)
    assert services.ticket_auto_assign(ticket=make_ticket(department=queue)) == free
    assert services.ticket_auto_assign(ticket=make_ticket(department=queue)) == free
    # now 2 and 2: the tie goes to whoever was assigned automatically longest ago (never: busy)
    assert services.ticket_auto_assign(ticket=make_ticket(department=queue)) == busy
    AgentProfile.objects.filter(user__in=[busy, free]).update(max_open_tickets=3)
    assert services.ticket_auto_assign(ticket=make_ticket(department=queue)) == free
    assert services.ticket_auto_assign(ticket=make_ticket(department=queue)) is None  # everyone full


@pytest.mark.django_db(transaction=True)
def test_concurrent_auto_assignment_never_exceeds_capacity():
    queue = DepartmentFactory()
    agent = make_agent(queue)
    AgentProfile.objects.filter(user=agent).update(max_open_tickets=3)
    tickets = [make_ticket(department=queue) for _ in range(8)]
    barrier = threading.Barrier(len(tickets))
    results = []

    def assign(ticket):
        try:
            barrier.wait(5)
            results.append(services.ticket_auto_assign(ticket=ticket))
        finally:
            connection.close()

    threads = [threading.Thread(target=assign, args=(t,)) for t in tickets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == len(tickets)
    assert Ticket.objects.filter(assignee=agent).count() == 3
    assert sum(1 for r in results if r == agent) == 3
