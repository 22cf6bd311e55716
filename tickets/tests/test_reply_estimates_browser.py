"""The promise in the customer's browser: "Talk to a person" in headless Chromium on the real ASGI app swaps in the
status line saying by when a person will reply, and the handover notice arrives in the thread over the socket."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tickets import services
from tickets.models import Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory
from tickets.tests.test_chat_browser import expect_connected, start_conversation, thread

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)


def test_talk_to_a_person_says_by_when(new_context):
    page = new_context().new_page()
    ticket = start_conversation(page, "I was charged twice this month")
    department = DepartmentFactory(name="Billing")  # its SLA: a first response within 4 hours (normal)
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", department=department)  # as triage routes it
    expect_connected(page)

    page.get_by_role("button", name="Talk to a person").click()

    expect(page.locator("#chat-status")).to_contain_text("will reply here by about")
    promised = Ticket.objects.get(pk=ticket.pk).reply_promised_at
    when = f"by about {promised:%H:%M} UTC"
    expect(page.locator("#chat-status .chat-handover")).to_contain_text(when)
    expect(
        thread(page).filter(has_text=f"passed this to our Billing team; a person will reply here {when}")
    ).to_have_count(1)
