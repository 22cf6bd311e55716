"""Accessibility in headless Chromium on the real ASGI app: axe-core finds no serious or critical violation on
the inbox, the ticket page, the customer chat, the help center and the analytics overview, in the light and the
dark theme; and the three contrast failures once found by hand (amber "reply soon", "breached" red on the dark
theme, the meta line on the customer's own chat bubble) stay at 4.5:1 or more, read from the computed styles."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from knowledge import services as kb_services
from knowledge.models import Article
from tickets import services
from tickets.models import Macro, Ticket
from tickets.services import ticket_assign
from tickets.tests import browser as harness
from tickets.tests.a11y import axe_violations, contrast_of, describe, use_theme
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_manager, make_ticket
from tickets.tests.test_chat_browser import AGENT_PASSWORD, start_conversation

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

expect.set_options(timeout=15_000)

VIEWPORT = {"width": 1400, "height": 900}
AA_NORMAL_TEXT = 4.5
# theme name -> (the admin's toggle in localStorage, the browser's colour scheme)
THEMES = {"light": ("light", "light"), "dark": ("dark", "dark"), "auto-dark": ("auto", "dark")}


@pytest.fixture
def world(transactional_db):
    """A manager's department with a ticket whose first reply is due within the hour, one already breached
    and one with a thread (customer, AI, agent, internal note); a shared macro; a published article."""
    billing = DepartmentFactory(name="Billing")
    manager = make_manager(billing, username="maria")
    manager.first_name = "Maria"
    manager.set_password(AGENT_PASSWORD)
    manager.save()
    soon, breached, worked = (
        make_ticket(department=billing, customer=CustomerFactory(name=name), subject=subject, priority=priority)
        for name, subject, priority in [
            ("Grace Hopper", "Invoice shows the wrong VAT number", "high"),
            ("Alan Turing", "Charged twice for the annual plan", "urgent"),
            ("Ada Lovelace", "How do I export my notes?", "normal"),
        ]
    )
    now = timezone.now()
    Ticket.objects.filter(pk=soon.pk).update(first_response_due_at=now + dt.timedelta(minutes=30))
    Ticket.objects.filter(pk=breached.pk).update(
        first_response_due_at=now - dt.timedelta(minutes=10), first_response_breached=True
    )
    services.message_create(
        ticket=worked, author_kind="ai", body="Open **Settings → Export**.", ai_confidence=0.62,
        citations=[{"title": "Export your notes", "url": "/help/export/"}],
    )  # fmt: skip
    services.message_create(ticket=worked, author_kind="agent", author_user=manager, body="Did that work?")
    services.message_create(
        ticket=worked, author_kind="agent", author_user=manager, body="Checked the logs.", is_internal=True
    )
    for ticket in (soon, breached, worked):
        ticket_assign(ticket=ticket, assignee=manager, actor=manager)
    services.macro_save(
        macro=Macro(name="Refund policy", body="Hi {{ customer.first_name }}, about {{ ticket.reference }}.",
                    actions={"assign": "me", "status": "pending"}),
        actor=manager, shared=True,
    )  # fmt: skip
    kb_services.article_save(
        title="Export your notes", slug="export", status=Article.Status.PUBLISHED, reindex="none",
        category=kb_services.category_for("Billing"), body="## Export\n\nOpen Settings → Export and pick a format.",
    )  # fmt: skip
    return {"soon": soon, "breached": breached, "worked": worked}


def open_context(new_context, theme: str):
    toggle, scheme = THEMES[theme]
    context = new_context(viewport=VIEWPORT, color_scheme=scheme)
    use_theme(context, toggle)
    return context


def sign_in(page: Page, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.locator("#id_username").fill("maria")
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(next_url) + "$"))


def expect_theme(page: Page, theme: str) -> None:
    expect(page.locator("html")).to_have_attribute("data-theme", THEMES[theme][0])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_or_critical_axe_violation_on_the_pages_people_use(new_context, world, theme):
    page = open_context(new_context, theme).new_page()
    found: dict[str, list[dict]] = {}

    page.goto("/admin/login/")
    found["sign-in"] = axe_violations(page)
    sign_in(page, "/admin/tickets/ticket/?view=open")
    expect_theme(page, theme)
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    found["inbox"] = axe_violations(page)

    page.goto(f"/admin/tickets/ticket/{world['worked'].pk}/change/")
    expect(page.locator("#connection")).to_have_text("Connected")
    found["ticket page"] = axe_violations(page)
    page.locator("#sf-reply textarea[name=body]").click()
    page.keyboard.type("/")
    expect(page.get_by_role("listbox", name="Macros")).to_be_visible()
    found["ticket page, macro picker open"] = axe_violations(page)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    found["ticket page, shortcuts dialog"] = axe_violations(page)

    page.goto("/analytics/")
    expect(page.locator("#an-tiles .tile").first).to_be_visible()
    found["analytics overview"] = axe_violations(page)

    customer = open_context(new_context, theme).new_page()
    ticket = start_conversation(customer, "My export button does nothing.")
    services.message_create(
        ticket=ticket, author_kind="ai", body="Try **Settings → Export**.", ai_confidence=0.8,
        citations=[{"title": "Export your notes", "url": "/help/export/"}],
    )  # fmt: skip
    customer.reload()  # the broadcast cannot leave this thread (Playwright's loop runs here); the page resyncs
    expect(customer.locator("#messages li.msg-ai")).to_have_count(1)
    found["customer chat"] = axe_violations(customer)

    customer.goto("/help/")
    expect(customer.get_by_role("link", name="Export your notes")).to_be_visible()
    found["help center"] = axe_violations(customer)
    customer.goto("/help/?q=export+notes")
    found["help center search"] = axe_violations(customer)

    found = {where: violations for where, violations in found.items() if violations}
    assert not found, "axe-core found serious or critical violations:\n" + describe(found)


@pytest.mark.parametrize("theme", ["light", "dark", "auto-dark"])
def test_the_three_known_contrast_failures_stay_fixed(new_context, world, theme):
    page = open_context(new_context, theme).new_page()
    sign_in(page, "/admin/tickets/ticket/?view=open")
    expect(page.locator(".sf-sla-soon")).to_have_count(1)
    ratios = {
        "amber 'reply soon' in the list": contrast_of(page, ".sf-sla-soon"),
        "'breached' in the list": contrast_of(page, ".sf-sla-breached"),
    }
    page.goto(f"/admin/tickets/ticket/{world['soon'].pk}/change/")
    ratios["'reply soon' clock on the ticket page"] = contrast_of(page, ".sf-clock-soon .sf-clock-text")
    page.goto(f"/admin/tickets/ticket/{world['breached'].pk}/change/")
    ratios["'overdue' clock on the ticket page"] = contrast_of(page, ".sf-clock-overdue .sf-clock-text")

    customer = open_context(new_context, theme).new_page()
    start_conversation(customer, "Where is my invoice?")
    ratios["meta on the customer's own bubble"] = contrast_of(customer, "#messages li.msg-customer .msg-meta time")

    too_low = {what: r for what, r in ratios.items() if r["ratio"] < AA_NORMAL_TEXT}
    assert not too_low, "\n".join(
        f"{what}: {r['ratio']:.2f}:1 ({r['color']} on {r['background']}, {r['text']!r})" for what, r in too_low.items()
    )
