"""What the AI does with a ticket an agent opened for a customer (a call, a visit): it triages and drafts,
and never answers on its own or hands the ticket over — the customer is not on a channel an AI message
reaches, and the agent already has the conversation. Real pipeline, local provider (``test_pipeline``'s world)."""

from __future__ import annotations

from tickets import services
from tickets.ai import pipeline
from tickets.models import AIDraft, Ticket
from tickets.tests.factories import CustomerFactory
from tickets.tests.test_pipeline import world  # noqa: F401 — the fixture: queues, agents, a small knowledge base

QUESTION = "My notes are stuck syncing on my Android phone, it says syncing forever"


def process_first_message(ticket: Ticket, capture) -> str:
    with capture(execute=True):
        return pipeline.process_message(message_id=ticket.messages.get(seq=1).pk)


def test_a_ticket_an_agent_opened_gets_a_draft_not_an_answer(world, django_capture_on_commit_callbacks):  # noqa: F811
    billing, bill = world["departments"]["billing"], world["agents"]["bill"]
    ticket = services.ticket_open_for_customer(
        actor=bill, body=QUESTION, channel="phone", department=billing, customer_name="Ada", assign_to_me=False
    )

    outcome = process_first_message(ticket, django_capture_on_commit_callbacks)

    ticket.refresh_from_db()
    assert outcome == "drafted"
    assert list(ticket.messages.values_list("author_kind", flat=True)) == ["customer"]  # no answer, no handover note
    draft = AIDraft.objects.get(ticket=ticket)
    assert draft.status == "pending"
    assert "Reset local cache" in draft.body  # ready for the agent to use
    assert draft.gate["triggers"][0]["reason"] == pipeline.OPENED_BY_AGENT_REASON  # the console says why
    assert (ticket.escalated, ticket.assignee, ticket.status) == (False, None, "new")
    assert ticket.department == billing  # the agent's routing stands
    assert ticket.triage["provider"] == "local"
    assert ticket.category


def test_the_customers_own_ticket_with_the_same_words_is_answered_and_routed(
    world,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    billing = world["departments"]["billing"]
    ticket = services.ticket_create(customer=CustomerFactory(), subject="", body=QUESTION, department=billing)

    outcome = process_first_message(ticket, django_capture_on_commit_callbacks)

    ticket.refresh_from_db()
    assert outcome == "sent"
    assert ticket.department.slug == "technical"
