"""One whole conversation as a customer has it, in headless Chromium on the real ASGI app with a real
Celery worker (local provider): a greeting is greeted, two questions and a follow-up are answered from
the articles with sources and a "Did this answer your question?", thanks closes politely, "Talk to a
person" hands over, and a clear question asked while waiting is still answered — as such."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tickets.models import Message, Ticket
from tickets.tests import browser as harness
from tickets.tests.test_ai_browser import world  # noqa: F401 — the departments, an agent, the articles
from tickets.tests.test_chat_browser import send_as_customer, start_conversation, thread

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
AI_TURN = 90_000  # ms: the first turn also loads the embedding model in the worker


def assistant(page):
    return thread(page).filter(has=page.locator(".badge-ai"))


def test_a_whole_conversation_feels_right(new_context, world, celery_worker):  # noqa: F811
    page = new_context().new_page()
    ticket = start_conversation(page, "Hi there")
    expect(assistant(page)).to_have_count(1, timeout=AI_TURN)
    expect(assistant(page).last).to_contain_text("What can I help you with")
    expect(assistant(page).last.locator(".msg-feedback")).to_have_count(0)  # a greeting is not rated

    send_as_customer(page, "My notes are stuck syncing on my Android phone, it says syncing forever")
    expect(assistant(page)).to_have_count(2, timeout=AI_TURN)
    answer = assistant(page).last
    expect(answer).to_contain_text("Reset local cache")
    expect(answer.locator(".msg-sources a")).to_have_attribute("href", "/help/articles/reset-sync-android/")
    answer.get_by_role("button", name="Yes").click()
    expect(answer.locator(".msg-feedback")).to_contain_text("Thanks for letting us know")

    send_as_customer(page, "I was also charged twice after upgrading, why?")
    expect(assistant(page)).to_have_count(3, timeout=AI_TURN)
    expect(assistant(page).last.locator(".msg-sources a")).to_have_attribute("href", "/help/articles/charged-twice/")

    send_as_customer(page, "Great, thanks!")
    expect(assistant(page)).to_have_count(4, timeout=AI_TURN)
    expect(assistant(page).last).to_contain_text("welcome")
    assert not Ticket.objects.get(pk=ticket.pk).escalated  # nothing so far needed a person

    page.get_by_role("button", name="Talk to a person").click()
    expect(page.locator("#chat-status")).to_contain_text("will reply here")
    expect(thread(page).filter(has_text="a person will reply")).to_have_count(1)
    assert Ticket.objects.get(pk=ticket.pk).escalated

    send_as_customer(page, "How do I export a notebook as Markdown files?")
    expect(assistant(page)).to_have_count(5, timeout=AI_TURN)
    waiting = assistant(page).last
    expect(waiting).to_contain_text("While you wait")
    expect(waiting.locator(".msg-sources a")).to_have_attribute("href", "/help/articles/export-markdown/")
    assert Message.objects.filter(ticket=ticket, author_kind="system").count() == 1  # handed over once
