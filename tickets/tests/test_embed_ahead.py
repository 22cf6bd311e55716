"""Under load, a worker's model call also encodes the texts of customer messages still waiting in the AI
queue (``pipeline._waiting_texts`` → ``embeddings.embed_cached(ahead=…)``), and the process that later runs
such a message finds its vectors instead of calling the model. Which messages count as waiting, and the
hand-over end to end through the real pipeline (local provider, the test Redis as the shared cache)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tickets import services
from tickets.ai import guard, pipeline, runs
from tickets.models import AIDraft, Message, Ticket
from tickets.tests import test_pipeline
from tickets.tests.test_pipeline import customer_writes

world = test_pipeline.world
pytestmark = pytest.mark.django_db


@pytest.fixture
def model_calls(monkeypatch):
    from knowledge import embeddings

    monkeypatch.setattr(embeddings, "_cache", type(embeddings._cache)())
    calls: list[list[str]] = []
    encode = embeddings.embed
    monkeypatch.setattr(embeddings, "embed", lambda texts, **kw: calls.append(list(texts)) or encode(texts, **kw))
    return calls


def windows_of(message: Message) -> set[str]:
    return set(guard.windows(message.body))


def test_waiting_means_another_conversation_s_recent_unanswered_last_message_nobody_holds(world):
    current = customer_writes("How do I export my notes to Markdown?")
    first = customer_writes("My notes are stuck syncing on Android")
    second = customer_writes("Can I get an invoice with my company name?")
    answered = customer_writes("How do I turn on two-factor?")
    AIDraft.objects.create(ticket=answered.ticket, in_reply_to=answered, body="…", confidence=0.9)
    replied = customer_writes("Do you have a student discount?")
    services.message_create(ticket=replied.ticket, author_kind="ai", body="Yes, 50 %.")
    closed = customer_writes("Please delete my account")
    Ticket.objects.filter(pk=closed.ticket_id).update(status="closed")
    old = customer_writes("Where is my refund?")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(minutes=10))
    held = customer_writes("The app crashes when I attach a photo")
    assert runs.message_lock(held.pk, timeout=60)  # a process is on it already
    same_ticket = customer_writes("and on iPhone too?", ticket=current.ticket)

    texts = set(pipeline._waiting_texts(same_ticket.ticket_id))

    assert windows_of(first) | windows_of(second) <= texts
    for other in (answered, replied, closed, old, held, current, same_ticket):
        assert not windows_of(other) & texts, other.body


def test_at_most_ai_embed_ahead_messages_the_oldest_first_and_none_when_off(world, settings):
    current = customer_writes("How do I export my notes to Markdown?")
    first = customer_writes("My notes are stuck syncing on Android")
    second = customer_writes("Can I get an invoice with my company name?")

    settings.AI_EMBED_AHEAD = 1
    texts = set(pipeline._waiting_texts(current.ticket_id))
    assert windows_of(first) <= texts
    assert not windows_of(second) & texts

    settings.AI_EMBED_AHEAD = 0
    assert pipeline._waiting_texts(current.ticket_id) == []


def test_the_next_message_is_answered_without_a_model_call_for_its_own_words(
    world, django_capture_on_commit_callbacks, model_calls
):
    from knowledge import embeddings

    # given two customers' questions waiting, neither seen by any process
    first = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    second = customer_writes("How do I export a notebook to Markdown?")

    # when one process answers the first, and another process (nothing in memory) the second
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process_message(message_id=first.pk) == "sent"
    [together] = [batch for batch in model_calls if windows_of(first) & set(batch)]
    embeddings._cache.clear()
    model_calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process_message(message_id=second.pk) == "sent"

    # then the first call carried the second's words, and the second's own words never reached the model
    assert windows_of(second) <= set(together)
    assert not any(windows_of(second) & set(batch) for batch in model_calls)
    assert second.ticket.messages.filter(author_kind="ai").exists()
