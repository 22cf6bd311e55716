"""Collision in a real browser: two agents (two browser contexts, two sign-ins) on one ticket, on the ASGI
app served by uvicorn in this process (real PostgreSQL, Redis channel layer and presence), driven by
headless Chromium. Each step asserts what an agent sees, with Playwright's auto-waiting ``expect``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tickets.models import Message
from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket
from tickets.tests.test_chat_browser import (
    AGENT_PASSWORD,
    REPLY_BOX,
    open_ticket_as_agent,
    reply_as_agent,
    thread,
    watch_console,
)

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)


def agent_named(department, first: str, last: str):
    user = make_agent(department)
    user.first_name, user.last_name = first, last
    user.set_password(AGENT_PASSWORD)
    user.save()
    return user


def viewers(page: Page):
    return page.locator("#sf-viewers .sf-viewer-name")


def no_errors(errors: list[str]) -> None:
    assert errors == [], errors


def test_two_agents_see_each_other_type_and_the_second_is_warned_before_crossing_a_reply(new_context):
    queue = DepartmentFactory()
    ticket = make_ticket(department=queue, body="My invoice is wrong")
    alice = agent_named(queue, "Alice", "Archer")
    bob = agent_named(queue, "Bob", "Baker")

    alice_context, bob_context = new_context(), new_context()
    alice_page, bob_page = alice_context.new_page(), bob_context.new_page()
    _, alice_errors = watch_console(alice_page)
    _, bob_errors = watch_console(bob_page)
    open_ticket_as_agent(alice_context, alice, ticket, page=alice_page)
    open_ticket_as_agent(bob_context, bob, ticket, page=bob_page)

    # Each sees the other, never themselves.
    expect(viewers(alice_page)).to_have_text(["Bob Baker"])
    expect(viewers(bob_page)).to_have_text(["Alice Archer"])
    expect(alice_page.locator("#sf-viewers .sf-avatar")).to_have_text(["BB"])

    # The list, in another tab of Alice's: Bob's initials on the ticket's row.
    queue_page = alice_context.new_page()
    _, queue_errors = watch_console(queue_page)
    queue_page.goto("/admin/tickets/ticket/")
    row_marker = queue_page.locator(f"#sf-row-viewers-{ticket.pk}")
    expect(row_marker.locator(".sf-avatar")).to_have_text(["BB"])
    expect(row_marker).to_contain_text("Viewing now: Bob Baker")

    # Bob starts a reply: Alice sees him typing — and not what he types.
    bob_page.locator(REPLY_BOX).press_sequentially("Let me look into the invoice", delay=15)
    typing = alice_page.locator(f"#sf-typing-{bob.pk}")
    expect(typing).to_have_text("Bob Baker is typing a reply…")
    expect(alice_page.locator("#sf-presence")).not_to_contain_text("invoice")

    # Alice replies first; Bob's thread shows it live while his text stays in the box.
    reply_as_agent(alice_page, "I corrected the invoice and sent it again.")
    expect(thread(bob_page).filter(has_text="I corrected the invoice")).to_have_count(1)

    # Bob sends: not sent — the box shows what Alice wrote, his text kept, and "Send anyway".
    bob_page.locator("#sf-reply button[name=_reply]").click()
    warning = bob_page.locator("#sf-reply .sf-conflict")
    expect(warning).to_contain_text("Not sent: the conversation moved on while you were writing.")
    expect(warning.locator(".sf-conflict-author")).to_have_text(["Alice Archer"])
    expect(warning.locator(".sf-conflict-body")).to_have_text(["I corrected the invoice and sent it again."])
    expect(bob_page.locator(REPLY_BOX)).to_have_value("Let me look into the invoice")
    assert not Message.objects.filter(ticket=ticket, author_user=bob).exists()

    # Send anyway: sent.
    warning.get_by_role("button", name="Send anyway").click()
    expect(bob_page.locator("#sf-reply .sf-ok")).to_have_text("Reply sent.")
    expect(thread(alice_page).filter(has_text="Let me look into the invoice")).to_have_count(1)
    sent = Message.objects.get(ticket=ticket, author_user=bob)
    assert (sent.body, sent.is_internal) == ("Let me look into the invoice", False)

    # Bob's next reply, written after he saw everything, goes straight out.
    reply_as_agent(bob_page, "Anything else I can do?")

    # Bob leaves: he disappears from Alice's ticket page and from the list.
    bob_page.close()
    expect(viewers(alice_page)).to_have_count(0)
    expect(row_marker.locator(".sf-avatar")).to_have_count(0)
    for errors in (alice_errors, bob_errors, queue_errors):
        no_errors(errors)
