"""Console workflows in headless Chromium on the real ASGI app (uvicorn in this process, PostgreSQL, the
Redis channel layer): an agent logs a phone call from the ticket list; a merge reaches the open pages of
both tickets live; a manager downloads the list as CSV, streamed by the real server."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tickets import selectors
from tickets.models import Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager, make_ticket
from tickets.tests.test_chat_browser import AGENT_PASSWORD, expect_connected, open_ticket_as_agent, thread

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=10_000)


def with_password(user):
    user.first_name = "Dana"
    user.set_password(AGENT_PASSWORD)
    user.save()
    return user


def sign_in(page, user, then: str) -> None:
    page.goto(f"/admin/login/?next={then}")
    page.locator("#id_username").fill(user.get_username())
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()


def test_an_agent_logs_a_phone_call_from_the_ticket_list(new_context):
    department = DepartmentFactory(name="Billing")
    agent = with_password(make_agent(department))
    page = new_context().new_page()
    sign_in(page, agent, "/admin/tickets/ticket/")

    page.get_by_role("link", name="New ticket").click()
    page.get_by_label("How the customer reached you").select_option("phone")
    page.get_by_label("Customer's email").fill("grace@example.com")
    page.get_by_label("Customer's name").fill("Grace Hopper")
    page.get_by_label("What the customer said").fill("She was charged twice for March.")
    page.get_by_label("Queue").select_option(label="Billing")
    page.get_by_role("button", name="Open the ticket").click()

    ticket = Ticket.objects.get()
    expect(page).to_have_url(re.compile(rf"/admin/tickets/ticket/{ticket.pk}/change/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"{ticket.reference} opened for Grace Hopper")
    expect(thread(page).filter(has_text="She was charged twice for March.")).to_have_count(1)
    expect_connected(page)
    assert (ticket.channel, ticket.assignee, ticket.opened_by) == ("phone", agent, agent)


def test_a_merge_tells_the_open_pages_and_the_old_link_opens_the_merged_conversation(new_context):
    department = DepartmentFactory()
    agent = with_password(make_agent(department))
    customer = CustomerFactory(name="Ada Lovelace")
    kept = make_ticket(department=department, customer=customer, body="First: my sync is stuck")
    merged = make_ticket(department=department, customer=customer, body="Second: still stuck on Android")

    chat = new_context().new_page()
    chat.goto(f"/chat/c/{selectors.ticket_customer_token(ticket=merged)}/")
    expect(chat.locator("#connection")).to_have_text("Connected")
    watching = open_ticket_as_agent(new_context(), agent, merged)
    merging = open_ticket_as_agent(new_context(), agent, merged)

    merging.get_by_role("link", name="Merge into…").click()
    merging.get_by_role("link", name=kept.reference).click()
    merging.get_by_role("button", name=f"Merge {merged.reference} into it").click()

    expect(merging).to_have_url(re.compile(rf"/admin/tickets/ticket/{kept.pk}/change/$"))
    expect(thread(merging)).to_have_count(3)
    notice = f"This conversation was merged into {kept.reference}."
    expect(watching.locator("#chat-error")).to_contain_text(notice)
    watching.get_by_role("link", name=f"Open {kept.reference}").click()
    expect(watching).to_have_url(re.compile(rf"/admin/tickets/ticket/{kept.pk}/change/$"))

    expect(chat.locator("#chat-error")).to_contain_text(notice)
    chat.get_by_role("link", name="Reload to see all of it").click()
    expect(chat.locator(".chat-ref")).to_contain_text(kept.reference)
    expect(thread(chat).filter(has_text="First: my sync is stuck")).to_have_count(1)
    expect(thread(chat).filter(has_text="Second: still stuck on Android")).to_have_count(1)
    expect(chat.locator("#connection")).to_have_text("Connected")


def test_a_manager_downloads_the_filtered_list_as_csv(new_context):
    billing, tech = DepartmentFactory(name="Billing"), DepartmentFactory(name="Technical")
    manager = with_password(make_manager())
    wanted = [make_ticket(department=billing, subject=f"Invoice {n}") for n in range(3)]
    make_ticket(department=tech, subject='=HYPERLINK("http://evil")')
    page = new_context(accept_downloads=True).new_page()
    sign_in(page, manager, f"/admin/tickets/ticket/?department__id__exact={billing.pk}")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()

    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"), newline="")))
    assert rows[0][:2] == ["Reference", "Subject"]
    assert sorted(r[0] for r in rows[1:]) == sorted(t.reference for t in wanted)
