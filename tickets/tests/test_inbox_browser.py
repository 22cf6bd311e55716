"""The inbox in headless Chromium on the real ASGI app: an agent signs in and lands on Mine with every view's
count, the list fits a 1400 px screen (the SLA column included), a count follows a change live, a saved
view shared by their manager opens with one click, and the agent saves a view of their own."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tickets.models import Ticket
from tickets.services import ticket_assign
from tickets.services.saved_views import saved_view_create
from tickets.services.tags import ticket_tag_add
from tickets.tests import browser as harness
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager, make_ticket
from tickets.tests.test_chat_browser import AGENT_PASSWORD

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture
def world(transactional_db):
    billing, sales = DepartmentFactory(name="Billing"), DepartmentFactory(name="Sales")
    agent = make_agent(billing, username="alice")
    agent.set_password(AGENT_PASSWORD)
    agent.save()
    manager = make_manager(billing, username="maria")
    tickets = []
    for i in range(6):
        ticket = make_ticket(
            department=billing,
            customer=CustomerFactory(name=f"Customer with a rather long name {i}"),
            subject=f"I was charged twice for my annual plan and need a refund, number {i}",
            priority="urgent" if i < 2 else "normal",
        )
        tickets.append(ticket)
    for ticket in tickets[:3]:
        ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    for ticket in tickets[::2]:
        ticket_tag_add(ticket=ticket, name="refund", actor=agent)
    make_ticket(department=sales, subject="Another team's ticket")  # never counted for alice
    shared = saved_view_create(
        owner=manager, name="Urgent billing", query="view=open&priority__exact=urgent", department=billing
    )
    return {"agent": agent, "tickets": tickets, "shared": shared}


def sign_in(page: Page, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()


def view_link(page: Page, key: str):
    return page.locator(f'.sf-inbox a[data-view="{key}"]')


def test_the_console_opens_on_mine_with_counts_and_a_saved_view_opens_with_a_click(new_context, world, tmp_path):
    page = new_context(viewport=VIEWPORT).new_page()

    sign_in(page, "alice")

    expect(page).to_have_url(re.compile(r"/admin/tickets/ticket/\?view=mine$"))
    mine = view_link(page, "mine")
    expect(mine).to_have_attribute("aria-current", "page")
    expect(page.locator("#sf-inbox-count-mine")).to_have_text("3")
    expect(page.locator("#sf-inbox-count-unassigned")).to_have_text("3")
    expect(page.locator("#sf-inbox-count-open")).to_have_text("6")
    expect(page.locator(f"#sf-inbox-count-saved-{world['shared'].pk}")).to_have_text("2")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    expect(page.locator("#result_list .sf-tag").first).to_have_text("refund")

    # 1400 × 900: the whole list is on screen, the SLA column included (no horizontal scrolling)
    page.screenshot(path=str(tmp_path / "inbox-1400x900.png"))
    sla = page.locator("#result_list th.column-sla_state")
    box = sla.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= VIEWPORT["width"]
    results = page.locator("#changelist-form .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth")

    view_link(page, f"saved-{world['shared'].pk}").click()

    expect(page).to_have_url(re.compile(r"\?view=open&priority__exact=urgent$"))
    expect(view_link(page, f"saved-{world['shared'].pk}")).to_have_attribute("aria-current", "page")
    expect(mine).not_to_have_attribute("aria-current", "page")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator(".sf-inbox-team")).to_have_text("Billing")


def test_a_count_follows_a_change_live_and_the_agent_saves_a_view(new_context, world):
    page = new_context(viewport=VIEWPORT).new_page()
    sign_in(page, "alice")
    expect(page.locator("#sf-inbox-count-mine")).to_have_text("3")
    # with a row selected the list does not reload itself on a change: the counts must follow anyway
    page.locator("#result_list input.action-select").first.check()

    ticket_assign(ticket=world["tickets"][4], assignee=world["agent"], actor=world["agent"])

    # the list's poll (every 10 s) brings every count out of band
    expect(page.locator("#sf-queue-updates")).to_contain_text("1 conversation updated", timeout=25_000)
    expect(page.locator("#sf-inbox-count-mine")).to_have_text("4")
    expect(page.locator("#sf-inbox-count-unassigned")).to_have_text("2")
    expect(page.locator("#result_list input.action-select").first).to_be_checked()  # the same page

    page.goto("/admin/tickets/ticket/?view=mine&tag=" + str(world["tickets"][0].tags.get().pk))
    page.get_by_label("Save this list as a view").fill("My refunds")
    page.get_by_role("button", name="Save view").click()

    saved = page.locator(".sf-inbox a.selected")
    expect(saved).to_contain_text("My refunds")
    expect(page.locator(".messagelist")).to_contain_text("View “My refunds” saved.")
    count = saved.locator(".sf-inbox-count")
    expect(count).to_have_text(str(Ticket.objects.filter(assignee=world["agent"], tags__name="refund").count()))
