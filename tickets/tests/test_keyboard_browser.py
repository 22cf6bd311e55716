"""An agent works the queue by keyboard only, in headless Chromium against the real ASGI app (uvicorn in
this process, PostgreSQL, the Redis channel layer): j and Enter open the first ticket of the list, r opens
the reply box, "/" and a macro's name insert it, Ctrl+Enter sends, Shift+R resolves, j opens the next
ticket of the same list. After signing in, no mouse event is sent."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tickets import services
from tickets.models import Macro, Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager, make_ticket

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-for-keyboard-tests"
REPLY_BOX = "#sf-reply textarea[name=body]"

expect.set_options(timeout=10_000)


@pytest.fixture
def world():
    queue = DepartmentFactory(name="Billing")
    agent = make_agent(queue, username="kim")
    agent.first_name = "Kim"
    agent.set_password(PASSWORD)
    agent.save()
    other_queue = DepartmentFactory(name="Sales")
    tickets = [
        make_ticket(department=queue, customer=CustomerFactory(name=name), subject=subject)
        for name, subject in (
            ("Alan Turing", "Invoice address wrong"),
            ("Barbara Liskov", "Refund for my annual plan"),
            ("Grace Hopper", "Charged twice this month"),
        )
    ]
    make_ticket(department=other_queue, subject="Not in Kim's queues")  # the newest, and not Kim's
    macro = services.macro_save(
        macro=Macro(
            name="Refund policy",
            body="Hi {{ customer.first_name }}, refunds for {{ ticket.reference }} reach your card in 5 days. "
            "{{ agent.first_name }}",
            actions={"assign": "me"},
        ),
        actor=make_manager(queue),
        shared=True,
    )
    return {"agent": agent, "tickets": tickets, "macro": macro}


def sign_in_to_the_list(page: Page, agent) -> None:
    page.goto("/admin/login/?next=/admin/tickets/ticket/%3Fview%3Dall")
    page.locator("#id_username").fill(agent.get_username())
    page.locator("#id_password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/tickets/ticket/\?view=all$"))
    page.wait_for_load_state()  # keys pressed before the page's scripts run would be lost, as for anyone


def ticket_url(ticket: Ticket) -> re.Pattern:
    return re.compile(rf"/admin/tickets/ticket/{ticket.pk}/change/(\?.*)?$")


def test_an_agent_works_the_queue_by_keyboard_only(new_context, world):
    first, second = world["tickets"][2], world["tickets"][1]  # the list shows the newest first
    page = new_context(viewport={"width": 1400, "height": 900}).new_page()
    sign_in_to_the_list(page, world["agent"])

    # the list: j focuses the first row, visibly; Enter opens it
    page.keyboard.press("j")
    row = page.locator("#result_list tbody tr.sf-row-focus")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(first.reference)
    expect(row.locator("a").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(ticket_url(first))
    expect(page.locator("#connection")).to_have_text("Connected")

    # r: the reply box; "/" and a name: the macro list; Enter: the macro, rendered for this ticket
    page.keyboard.press("r")
    expect(page.locator(REPLY_BOX)).to_be_focused()
    page.keyboard.type("Hello! /refund")
    listbox = page.get_by_role("listbox", name="Macros")
    expect(listbox).to_be_visible()
    option = listbox.get_by_role("option", name=re.compile("Refund policy"))
    expect(option).to_have_attribute("aria-selected", "true")
    expect(page.locator(REPLY_BOX)).to_have_attribute("aria-activedescendant", f"sf-macro-{world['macro'].pk}")
    page.keyboard.press("Enter")
    text = f"Hello! Hi Grace, refunds for {first.reference} reach your card in 5 days. Kim"
    expect(page.locator(REPLY_BOX)).to_have_value(text)
    expect(listbox).to_be_hidden()
    expect(page.locator("#sf-macro-chips")).to_contain_text("Refund policy when sent: assign to me")

    # Ctrl+Enter sends; the reply arrives in the thread over the websocket
    page.keyboard.press("Control+Enter")
    expect(page.locator("#sf-reply .sf-ok")).to_have_text("Reply sent.")
    expect(page.locator("#messages li.msg-agent")).to_contain_text(text)
    first.refresh_from_db()
    assert (first.assignee, first.status) == (world["agent"], "open")  # the macro's action, applied on send
    world["macro"].refresh_from_db()
    assert world["macro"].usage_count == 1

    # Esc leaves the reply box (shortcuts never fire inside it); Shift+R resolves (the Resolve button's
    # shortcut); j then opens the next ticket of the same list
    page.keyboard.press("Escape")
    expect(page.locator(REPLY_BOX)).not_to_be_focused()
    page.keyboard.press("Shift+R")
    expect(page.locator(".messagelist")).to_contain_text("done (resolve)")
    page.wait_for_load_state()
    first.refresh_from_db()
    assert first.status == "resolved"
    page.keyboard.press("j")
    expect(page).to_have_url(ticket_url(second))
    expect(page.locator("h1")).to_contain_text("Refund for my annual plan")
    page.wait_for_load_state()

    # ? lists the shortcuts in a modal dialog; Escape closes it
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Resolve")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # k goes back; shortcuts do nothing while typing (but Escape leaves the box)
    page.keyboard.press("n")
    expect(page.locator("#sf-reply input[name=is_internal]")).to_be_checked()
    page.keyboard.type("jk")
    expect(page).to_have_url(ticket_url(second))
    expect(page.locator(REPLY_BOX)).to_have_value("jk")
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    expect(page).to_have_url(ticket_url(first))


def test_a_macro_that_cannot_be_inserted_says_why_and_leaves_the_text(new_context, world):
    from knowledge.models import Article

    Article.objects.create(title="Refunds", slug="refunds", body="14 days.", status="published")
    world["macro"].body = "See {{ article:refunds }}"
    world["macro"].save()
    Article.objects.filter(slug="refunds").update(status="archived")
    page = new_context().new_page()
    sign_in_to_the_list(page, world["agent"])
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page).to_have_url(ticket_url(world["tickets"][2]))
    page.wait_for_load_state()

    page.keyboard.press("m")
    expect(page.get_by_role("listbox", name="Macros")).to_be_visible()
    page.keyboard.type("refund")
    page.keyboard.press("Enter")

    expect(page.locator("#sf-macro-status")).to_contain_text("not published any more")
    expect(page.locator(REPLY_BOX)).to_have_value("/refund")
    expect(page.locator("#sf-macro-chips li")).to_have_count(0)
