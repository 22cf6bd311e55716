"""A German customer in a real browser (Chromium with locale de-DE, so Accept-Language and navigator.language
are German): the chat start page, the live conversation and the rating prompt are in German — including
what is pushed over the websocket by code that has no request to take a language from."""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote, urlsplit

import pytest
from django.db import connection
from playwright.sync_api import expect

from tickets import selectors, services
from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_agent

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=10_000)


def in_another_process_like_thread(work) -> None:
    """``work()`` the way a worker or another web process would: its own thread (Playwright's loop runs in
    this one, where ``async_to_sync`` may not), its own database connection, no request, no active language."""
    errors = []

    def run() -> None:
        try:
            work()
        except Exception as exc:  # surfaced in the test below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []


def test_a_german_customer_chats_and_rates_in_german(new_context):
    customer = new_context(locale="de-DE").new_page()

    # the start page, from the browser's language
    customer.goto("/chat/")
    expect(customer.locator("html")).to_have_attribute("lang", "de")
    expect(customer.get_by_role("heading", level=1)).to_have_text("SupportFlow-Support")
    customer.get_by_label("Ihr Name").fill("Hannah Becker")
    customer.get_by_label("Wie können wir Ihnen helfen?").fill("Meine Notizen synchronisieren seit gestern nicht mehr")
    customer.get_by_role("button", name="Gespräch beginnen").click()

    # the conversation page, live
    expect(customer).to_have_url(re.compile(r"/chat/c/[^/]+/$"))
    expect(customer.locator("#connection")).to_have_text("Verbunden")  # the chat script's words, from the page
    expect(customer.locator("#messages li.msg[data-seq]")).to_have_count(1)
    expect(customer.locator("#messages .msg-author")).to_have_text("Sie")
    expect(customer.get_by_label("Ihre Nachricht")).to_be_editable()
    expect(customer.get_by_role("button", name="Meine Frage ist geklärt")).to_be_visible()
    token = unquote(urlsplit(customer.url).path.rstrip("/").split("/")[-1])
    ticket = selectors.ticket_get_for_customer(token=token)
    assert (ticket.ui_language, ticket.ui_language_chosen) == ("de", False)
    expect(customer.get_by_text("How did we do?")).to_have_count(0)
    # the switcher names each language in itself
    switcher = customer.locator("form.languages button")
    expect(switcher).to_have_text(["English", "Deutsch", "Español", "Français"])
    expect(customer.get_by_role("button", name="Deutsch")).to_be_disabled()

    # an agent resolves it elsewhere: the rating prompt arrives over the websocket, rendered without the
    # customer's request, in German
    agent = make_agent(DepartmentFactory())
    in_another_process_like_thread(lambda: services.ticket_resolve(ticket=ticket, actor=agent))
    rating = customer.locator("#chat-status form.rating")
    expect(rating).to_be_visible()
    expect(rating.locator("legend")).to_have_text("Wie zufrieden waren Sie mit uns?")
    expect(customer.locator("#chat-status")).to_contain_text("Dieses Gespräch ist gelöst.")
    expect(rating).to_contain_text("1 = schlecht, 5 = ausgezeichnet")

    customer.locator("label[for=csat-5]").click()
    customer.get_by_label("Möchten Sie noch etwas ergänzen? (optional)").fill("Schnell und freundlich")
    customer.get_by_role("button", name="Bewertung senden").click()
    expect(customer.locator("#chat-status")).to_contain_text(
        "Vielen Dank! Sie haben dieses Gespräch mit 5 von 5 bewertet."
    )
    ticket.refresh_from_db()
    assert (ticket.csat_score, ticket.csat_comment) == (5, "Schnell und freundlich")
    assert "How did we do" not in customer.content()
