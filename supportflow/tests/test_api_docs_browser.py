"""The API docs render in headless Chromium under our CSP, from vendored files only."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_manager

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-for-api-docs"


def test_api_docs_render_without_leaving_the_site(new_context, asgi_server):
    path, rendered = "/api/v1/docs/", ".opblock"
    manager = make_manager(DepartmentFactory(), username="docs-reader")
    manager.set_password(PASSWORD)
    manager.save()
    page = new_context().new_page()
    foreign: list[str] = []
    violations: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(asgi_server.url) else None)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"/admin/login/?next={path}")
    page.locator("#id_username").fill("docs-reader")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.locator(rendered).first).to_be_visible(timeout=30_000)
    assert not [u for u in foreign if not u.startswith(("data:", "blob:"))], foreign
    assert not violations, violations
