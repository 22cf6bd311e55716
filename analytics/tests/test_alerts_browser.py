"""The AI alerts banner in a real browser (Chromium): alerts.js fills the console's slot under the page's CSP,
the banner passes axe in the light and the dark theme, and "Dismiss" (a POST with its CSRF token) hides it."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from analytics import alerts
from tickets import services
from tickets.tests import a11y
from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket
from tickets.tests.test_chat_browser import AGENT_PASSWORD

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_manager_sees_the_escalation_alert_and_dismisses_it(new_context, settings, theme):
    settings.ALERT_MIN_SAMPLES = 5
    cache.delete(alerts.CACHE_KEY)
    department = DepartmentFactory()
    agent = make_agent(department)
    tickets = [make_ticket(department=department) for _ in range(5)]
    for ticket in tickets[:2]:
        services.ticket_escalate(ticket=ticket, reason="Needs a specialist", actor=agent)
    manager = make_manager(username="mara")
    manager.set_password(AGENT_PASSWORD)
    manager.save()
    context = new_context(viewport={"width": 1400, "height": 900})
    a11y.use_theme(context, theme)
    page = context.new_page()

    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill("mara")
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()

    banner = page.locator("#sf-alerts .sf-alerts")
    expect(banner).to_contain_text("40 % of new tickets were handed to a person")
    expect(page.locator("#sf-alerts")).to_have_attribute("role", "status")
    expect(banner.get_by_role("link", name="Open the AI page")).to_have_attribute("href", "/analytics/ai/")
    assert a11y.axe_violations(page) == [], a11y.describe({"banner": a11y.axe_violations(page)})
    assert a11y.contrast_of(page, "#sf-alerts li")["ratio"] >= 4.5

    with page.expect_response(lambda r: "/analytics/alerts/banner/" in r.url) as after_dismiss:
        banner.get_by_role("button", name="Dismiss").click()
    assert after_dismiss.value.text() == ""  # nothing to show in this session any more
    assert page.url.endswith("/admin/")
    with page.expect_response(lambda r: "/analytics/alerts/banner/" in r.url) as after_reload:
        page.reload()
    assert after_reload.value.text() == ""
    expect(page.locator("#sf-alerts .sf-alerts")).to_have_count(0)
