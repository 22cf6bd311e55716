"""The manager's overview in headless Chromium: tiles and charts render from real data, the date range
changes the figures, a CSV downloads, and a knowledge gap becomes a draft article. A screenshot of the
overview is saved to docs/analytics-overview.png. The savings tab keeps the range and its CSV has the page's figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from analytics import rollup, savings
from analytics.metrics import Filters
from analytics.models import KnowledgeGap
from knowledge.models import Article
from tickets import services
from tickets.models import AIRun, Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_manager

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-for-analytics-browser"
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "analytics-overview.png"


@pytest.fixture
def data(transactional_db):
    billing, tech = DepartmentFactory(name="Billing"), DepartmentFactory(name="Technical Support")
    now = rollup.day_start(rollup.today()) + dt.timedelta(hours=12)
    for i in range(24):
        department = billing if i % 3 else tech
        ticket = services.ticket_create(
            customer=CustomerFactory(), subject=f"Question {i}", body="How do I export my notes?",
            department=department, channel=("chat", "email", "api")[i % 3],
        )  # fmt: skip
        services.message_create(ticket=ticket, author_kind="ai", body="Here is how.", ai_confidence=0.9)
        if i % 4:
            services.ticket_resolve(ticket=ticket)
        days_ago = i % 12  # spread over the last 12 days
        created = now - dt.timedelta(days=days_ago, hours=2)
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=created,
            first_response_at=created + dt.timedelta(minutes=3 + i),
            resolved_at=(created + dt.timedelta(hours=1 + i)) if i % 4 else None,
            csat_score=(5, 4, 2)[i % 3] if i % 4 else None,
            csat_at=(created + dt.timedelta(hours=2 + i)) if i % 4 else None,
        )
    rollup.rebuild(rollup.today() - dt.timedelta(days=30), rollup.today())
    KnowledgeGap.objects.create(
        label="Is there a Linux desktop app?", size=7, examples=["Linux app?", "Ubuntu client?"],
        departments=["Technical Support"], first_seen=now - dt.timedelta(days=9), last_seen=now,
        window_start=rollup.today() - dt.timedelta(days=30), window_end=rollup.today(), computed_at=now,
    )  # fmt: skip
    manager = make_manager(billing, tech, username="maria")
    manager.set_password(PASSWORD)
    manager.save()
    return manager


def test_a_manager_reads_the_overview_changes_the_range_exports_and_drafts_from_a_gap(data, new_context):
    context = new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/admin/login/?next=/analytics/")
    page.locator("#id_username").fill("maria")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/analytics/$"))

    tiles = page.locator("#an-tiles .tile")
    expect(tiles).to_have_count(12)
    expect(page.locator("#an-tiles")).to_contain_text("Automation rate")
    charts = page.locator(".an-chart svg")
    expect(charts).to_have_count(9)
    assert page.locator(".an-chart svg polyline").count() >= 5  # lines were drawn, not empty frames
    assert page.locator(".an-chart svg rect").count() >= 6
    box = charts.first.bounding_box()
    assert box is not None
    assert (box["width"] > 300, box["height"] > 80) == (True, True)
    created = page.locator(".tile", has_text="Escalation rate").locator(".sub").inner_text()
    assert created.endswith("of 24 created")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # A shorter range: only the last 3 days' tickets (2 per day).
    page.get_by_label("From").fill((rollup.today() - dt.timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".tile", has_text="Escalation rate").locator(".sub")).to_have_text("0 of 6 created")

    with page.expect_download() as download:
        page.get_by_role("link", name="volume by channel").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0] == "day,api,chat,email"
    assert len(text.splitlines()) == 1 + 3

    page.get_by_role("link", name="Knowledge gaps").click()
    expect(page.locator(".an-gaps")).to_contain_text("Is there a Linux desktop app?")
    page.get_by_role("button", name="Draft an article").click()
    expect(page).to_have_url(re.compile(r"/admin/knowledge/article/\d+/change/$"))
    article = Article.objects.get()
    assert (article.status, article.title) == ("draft", "Is there a Linux desktop app?")
    assert not errors, errors


def test_a_manager_opens_the_savings_for_the_range_and_downloads_them(data, new_context):
    for t in Ticket.objects.exclude(resolved_at=None):
        AIRun.objects.create(key=f"savings-{t.pk}", ticket=t, kind="reply", provider="openai", cost=Decimal("0.05"))
    rollup.rebuild(rollup.today() - dt.timedelta(days=30), rollup.today())
    start = rollup.today() - dt.timedelta(days=2)
    expected = savings.savings(Filters(start, rollup.today()))
    assert (expected["resolved_by_ai"], expected["money_saved"]) == (5, Decimal("29.75"))  # 5 × 6.00 − 5 × 0.05
    context = new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    page.goto(f"/admin/login/?next=/analytics/%3Fstart%3D{start.isoformat()}")
    page.locator("#id_username").fill("maria")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()

    page.get_by_role("link", name="Savings").click()  # the tab keeps the range
    expect(page).to_have_url(re.compile(rf"/analytics/savings/\?start={start.isoformat()}"))
    tiles = page.locator("#an-savings .tile")
    expect(tiles).to_have_count(5)
    expect(page.locator(".tile", has_text="Money saved").locator(".value")).to_have_text("$29.75")
    expect(page.locator(".tile", has_text="AI cost per AI-resolved ticket").locator(".value")).to_have_text("$0.0500")
    expect(page.locator(".tile", has_text="Agent hours saved").locator(".value")).to_have_text("0.8 h")

    with page.expect_download() as download:
        page.locator("a.an-csv").click()
    figures = dict(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert (figures["money_saved"], figures["resolved_by_ai"]) == ("29.75", "5")
    assert not errors, errors
