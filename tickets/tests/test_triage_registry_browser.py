"""The triage model registry in headless Chromium on the real ASGI app: a manager promotes a rejected
version with one click on the console's list, then rolls back with one click; each button is a POST
carrying the page's CSRF token (the buttons submit one shared form)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from playwright.sync_api import expect

from tickets.ai.triage import local as triage_local
from tickets.models import TriageModel
from tickets.tests import browser as harness
from tickets.tests.factories import make_manager
from tickets.tests.test_console_workflows_browser import sign_in, with_password
from tickets.tests.test_triage_registry import shuffled_seed

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=10_000)


def _active() -> list[int]:
    return list(TriageModel.objects.filter(is_active=True).values_list("version", flat=True))


def test_a_manager_promotes_and_rolls_back_with_one_click_each(new_context):
    manager = with_password(make_manager())
    triage_local.train()
    rejected = triage_local.train(examples=shuffled_seed())
    assert (rejected.status, _active()) == ("rejected", [1])
    page = new_context().new_page()
    sign_in(page, manager, "/admin/tickets/triagemodel/")

    page.locator(f'[data-triage-promote="{rejected.version}"]').click()

    expect(page.locator(".messagelist")).to_contain_text("Triage model v2 is active.")
    assert _active() == [2]
    page.get_by_role("button", name="Roll back to the previous version").click()
    expect(page.locator(".messagelist")).to_contain_text("Triage model v1 is active.")
    assert _active() == [1]
    assert list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True)) == [
        "Promoted v2, replacing v1.",
        "Rolled back from v2 to v1.",
        "Rolled back from v2 to v1.",
    ]
