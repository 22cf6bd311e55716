"""The AI as a customer and an agent see it, in headless Chromium on the real ASGI app with a real
Celery worker (local provider, no API key): a question the knowledge base answers gets a cited AI
reply live; a request for a human is handed over, and the agent sends the AI's draft with one click."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from knowledge import services as kb_services
from tickets.ai import guard
from tickets.ai.triage import local as triage_local
from tickets.models import AIDraft, Department
from tickets.tests import browser as harness
from tickets.tests.factories import SLAPolicyFactory, make_agent
from tickets.tests.test_chat_browser import AGENT_PASSWORD, open_ticket_as_agent, start_conversation, thread
from tickets.tests.test_pipeline import ARTICLES

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(transactional_db, settings):
    settings.FEATURE_AI_PIPELINE = True
    technical = Department.objects.create(
        name="Technical Support", slug="technical", sla_policy=SLAPolicyFactory(), description="Sync and apps."
    )
    agent = make_agent(technical)
    agent.first_name = "Dana"
    agent.set_password(AGENT_PASSWORD)
    agent.save()
    for title, slug, body in ARTICLES:
        kb_services.article_save(title=title, slug=slug, status="published", reindex="now", body=body)
    # What a real worker does before its first task (supportflow/celery.py): fit the guard and triage
    # models now, not while the in-process worker shares this process with the page's server.
    guard.scan("warm up")
    triage_local.predict("warm up")
    return {"agent": agent, "technical": technical}


def test_a_kb_question_gets_a_cited_ai_answer_live(new_context, world, celery_worker):
    page = new_context().new_page()
    start_conversation(page, "My notes are stuck syncing on my Android phone, it says syncing forever")
    answer = thread(page).filter(has=page.locator(".badge-ai"))
    expect(answer).to_have_count(1, timeout=90_000)
    expect(answer).to_contain_text("Reset local cache")
    source = answer.locator(".msg-sources a")
    expect(source).to_have_attribute("href", "/help/articles/reset-sync-android/")
    page.wait_for_timeout(500)
    expect(page.locator("#ai-status")).to_have_text("")  # "preparing an answer" is gone


def test_asking_for_a_human_hands_over_and_the_agent_sends_the_draft(new_context, world, celery_worker):
    customer = new_context().new_page()
    ticket = start_conversation(
        customer, "Sync on my Android phone is stuck again and nothing helps. I want to talk to a human please."
    )
    expect(thread(customer).filter(has_text="a person will reply")).to_have_count(1, timeout=90_000)
    assert AIDraft.objects.get(ticket=ticket).status == "pending"

    agent_page = open_ticket_as_agent(new_context(), world["agent"], ticket)
    panel = agent_page.locator("#sf-ai")
    expect(panel).to_contain_text("Customer asked for a human")
    panel.get_by_role("button", name="Use draft").click()
    expect(panel).to_contain_text("Draft sent to the customer.")

    reply = thread(customer).filter(has_text="Dana")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text(re.compile("Reset local cache|getting in touch"))
    assert AIDraft.objects.get(ticket=ticket).status == "used"
