"""What a customer does in the chat besides writing: rate an AI answer, ask for a person, say it is solved."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tickets import selectors, services
from tickets.models import Message, Ticket, TicketEvent
from tickets.tests.factories import make_ticket

HTMX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


def url(ticket: Ticket, name: str, *args) -> str:
    return reverse(f"chat:{name}", args=[selectors.ticket_customer_token(ticket=ticket), *args])


@pytest.fixture
def answered(department):
    ticket = make_ticket(department=department, body="How do I export my notes?")
    answer = services.message_create(
        ticket=ticket,
        author_kind="ai",
        body="Open File → Export [1]",
        ai_confidence=0.82,
        citations=[{"n": 1, "title": "Export notes", "url": "/help/articles/export-notes/"}],
    )
    return ticket, answer


def test_an_ai_answer_asks_whether_it_answered_the_question(client, answered):
    ticket, answer = answered
    html = client.get(url(ticket, "conversation")).content.decode()
    assert "Did this answer your question?" in html
    assert f"/answers/{answer.seq}/feedback/" in html  # (the link's signature carries the time: compare the path)


def test_a_greeting_or_an_agents_reply_is_not_rated(client, department, agent):
    ticket = make_ticket(department=department, body="Hi")
    services.message_create(ticket=ticket, author_kind="ai", body="Hi! What can I help you with?")
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Hello, Tess here.")
    assert "Did this answer your question?" not in client.get(url(ticket, "conversation")).content.decode()
    assert client.post(url(ticket, "feedback", 2), {"helpful": "yes"}).status_code == 404
    assert client.post(url(ticket, "feedback", 3), {"helpful": "yes"}).status_code == 404


def test_yes_is_recorded_once_with_an_event(client, answered):
    ticket, answer = answered
    response = client.post(url(ticket, "feedback", answer.seq), {"helpful": "yes"}, **HTMX)
    assert response.status_code == 200
    assert "Thanks for letting us know" in response.content.decode()
    client.post(url(ticket, "feedback", answer.seq), {"helpful": "yes"}, **HTMX)
    answer.refresh_from_db()
    assert answer.feedback == "yes"
    assert answer.feedback_at is not None
    assert TicketEvent.objects.filter(ticket=ticket, kind="ai_feedback").count() == 1


def test_no_offers_a_person_at_once_and_a_click_hands_over(client, answered):
    ticket, answer = answered
    response = client.post(url(ticket, "feedback", answer.seq), {"helpful": "no"}, **HTMX)
    html = response.content.decode()
    assert "Sorry that didn't help" in html
    assert "/person/" in html
    assert not Ticket.objects.get(pk=ticket.pk).escalated  # offered, not forced

    response = client.post(url(ticket, "person"), **HTMX)
    assert response.status_code == 200
    assert "will reply here" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.escalated
    assert ticket.escalation_reason == "Customer asked for a person"
    client.post(url(ticket, "person"), **HTMX)  # a second click changes nothing
    assert ticket.messages.filter(author_kind="system").count() == 1


def test_a_vote_can_change_and_a_bad_vote_is_refused_with_a_reason(client, answered):
    ticket, answer = answered
    client.post(url(ticket, "feedback", answer.seq), {"helpful": "yes"}, **HTMX)
    client.post(url(ticket, "feedback", answer.seq), {"helpful": "no"}, **HTMX)
    assert Message.objects.get(pk=answer.pk).feedback == "no"
    response = client.post(url(ticket, "feedback", answer.seq), {"helpful": "maybe"}, **HTMX)
    assert response.status_code == 400
    assert "Say yes or no." in response.content.decode()
    assert Message.objects.get(pk=answer.pk).feedback == "no"


def test_another_conversations_token_cannot_rate_this_answer(client, answered, department):
    _, answer = answered
    other = make_ticket(department=department, body="Something else")
    assert client.post(url(other, "feedback", answer.seq), {"helpful": "no"}).status_code == 404
    assert Message.objects.get(pk=answer.pk).feedback == ""


def test_solved_resolves_and_opens_the_rating(client, answered):
    ticket, _ = answered
    html = client.get(url(ticket, "conversation")).content.decode()
    assert "/solved/" in html
    response = client.post(url(ticket, "solved"), **HTMX)
    assert response.status_code == 200
    assert "How did we do?" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    event = TicketEvent.objects.get(ticket=ticket, kind="status_changed", to_value="resolved")
    assert event.actor_kind == "customer"


def test_a_closed_conversation_cannot_be_rated_or_handed_over(client, answered):
    ticket, answer = answered
    services.ticket_close(ticket=ticket)
    assert client.post(url(ticket, "feedback", answer.seq), {"helpful": "no"}, **HTMX).status_code == 400
    response = client.post(url(ticket, "person"), **HTMX)
    assert response.status_code == 400
    assert "closed" in response.content.decode()
    ticket.refresh_from_db()
    assert not ticket.escalated


def test_clicks_count_against_the_conversations_rate_limit(client, answered, settings):
    ticket, answer = answered
    settings.CHAT_RATE_PER_CONVERSATION = "2/60"
    for _ in range(2):
        assert client.post(url(ticket, "feedback", answer.seq), {"helpful": "yes"}, **HTMX).status_code == 200
    refused = client.post(url(ticket, "feedback", answer.seq), {"helpful": "no"}, **HTMX)
    assert refused.status_code == 429
    assert refused["Retry-After"]
    assert Message.objects.get(pk=answer.pk).feedback == "yes"
