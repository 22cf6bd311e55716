"""A German agent in a real browser (Chromium with locale de-DE): the console opens in German, the shortcuts
dialog (its texts come from the page, read by console.js) is German, and the header switcher turns the console
English and back — a plain POST with its CSRF token, remembered by the language cookie."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket
from tickets.tests.test_chat_browser import AGENT_PASSWORD

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_german_agent_works_in_german_and_switches_to_english(new_context):
    department = DepartmentFactory(name="Abrechnung")
    agent = make_agent(department, username="jonas")
    agent.set_password(AGENT_PASSWORD)
    agent.save()
    ticket = make_ticket(department=department, subject="Doppelte Abbuchung", body="Ich wurde zweimal belastet.")
    page = new_context(locale="de-DE", viewport={"width": 1400, "height": 900}).new_page()

    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill("jonas")
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()

    # the inbox, in German from the browser's language
    expect(page).to_have_url(re.compile(r"/admin/tickets/ticket/\?view=\w+$"))
    expect(page.locator('.sf-inbox a[data-view="mine"]')).to_contain_text("Meine")
    expect(page.locator('.sf-inbox a[data-view="unassigned"]')).to_contain_text("Nicht zugewiesen")

    # the ticket page, its shortcuts dialog and a message console.js shows from the page's data attributes
    page.goto(f"/admin/tickets/ticket/{ticket.pk}/change/")
    expect(page.locator("#sf-reply label").first).to_contain_text("Antworten an")
    expect(page.locator("#connection")).to_have_text("Verbunden")  # chat.js reads it from the page
    page.locator("body").press("Shift+?")
    expect(page.locator("#sf-shortcuts")).to_be_visible()
    expect(page.locator("#sf-shortcuts-title")).to_have_text("Tastenkürzel")
    page.locator("#sf-shortcuts button[type=submit]").click()
    page.locator("body").press("j")
    expect(page.locator("#sf-kbd-status")).to_contain_text("Dies ist das letzte Ticket Ihrer Liste")

    # the switcher: English, on the same page, and it sticks
    page.locator('#user-tools button[name="language"][value="en"]').click()
    expect(page).to_have_url(re.compile(rf"/admin/tickets/ticket/{ticket.pk}/change/$"))
    expect(page.locator("#sf-shortcuts-title")).to_have_text("Keyboard shortcuts")
    page.goto("/admin/tickets/ticket/")
    expect(page.locator('.sf-inbox a[data-view="mine"]')).to_contain_text("Mine")
    expect(page.locator('#user-tools button[value="en"]')).to_have_attribute("aria-pressed", "true")

    page.locator('#user-tools button[name="language"][value="de"]').click()
    expect(page.locator('.sf-inbox a[data-view="mine"]')).to_contain_text("Meine")
