"""The analytics pages: managers only, filters validated, CSV exports safe, query counts flat."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics import rollup
from analytics.models import KnowledgeGap
from analytics.views import safe_cell
from knowledge.models import Article
from tickets import services
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager

pytestmark = pytest.mark.django_db

PAGES = ["analytics:overview", "analytics:tiles", "analytics:agents", "analytics:ai", "analytics:gaps"]


@pytest.fixture
def manager(client):
    user = make_manager(username="maria")
    client.force_login(user)
    return user


def some_tickets(n: int, department=None) -> None:
    for i in range(n):
        ticket = services.ticket_create(
            customer=CustomerFactory(name=f'=HYPERLINK("http://evil.example","{i}")'),
            subject=f"Question {i}",
            body="How do I export?",
            department=department,
        )
        services.message_create(ticket=ticket, author_kind="ai", body="Here is how.", ai_confidence=0.9)
        services.ticket_resolve(ticket=ticket)


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", [*PAGES, "analytics:definitions"])
def test_agents_are_refused_with_a_page_that_says_why(client, name):
    client.force_login(make_agent(DepartmentFactory()))
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert b"Managers group" in response.content


def test_agents_cannot_export_or_draft(client):
    client.force_login(make_agent(DepartmentFactory()))
    assert client.get(reverse("analytics:export", args=["agents"])).status_code == 403
    gap = KnowledgeGap.objects.create(
        label="Linux app?", size=3, first_seen="2026-01-01T00:00Z", last_seen="2026-01-02T00:00Z",
        window_start="2026-01-01", window_end="2026-01-31", computed_at="2026-01-31T00:00Z",
    )  # fmt: skip
    assert client.post(reverse("analytics:gap-draft", args=[gap.pk])).status_code == 403
    assert not Article.objects.exists()


@pytest.mark.parametrize("name", [*PAGES, "analytics:definitions"])
def test_managers_see_every_page(client, manager, name):
    some_tickets(2)
    response = client.get(reverse(name))
    assert response.status_code == 200, response.content[:500]


def test_overview_shows_tiles_and_charts(client, manager):
    some_tickets(3)
    response = client.get(reverse("analytics:overview"))
    html = response.content.decode()
    assert html.count("<svg") >= 9
    assert "Automation rate" in html
    assert 'hx-trigger="every 15s"' in html
    assert "3 of 3 resolved" in html  # all three resolved by the AI alone


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-03-05&end=2026-03-01", "start date must be on or before"),
        ("start=2020-01-01&end=2026-01-01", "at most 731 days"),
        ("start=yesterday", "Enter a valid date"),
        ("department=abc", "Select a valid choice"),
        ("channel=fax", "Select a valid choice"),
    ],
)
def test_bad_filters_get_a_400_that_says_what_is_wrong(client, manager, query, message):
    response = client.get(reverse("analytics:overview") + "?" + query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert client.get(reverse("analytics:export", args=["totals"]) + "?" + query).status_code == 400


def test_csv_exports_neutralise_spreadsheet_formulas(client, manager):
    some_tickets(2)
    KnowledgeGap.objects.create(
        label="=cmd|' /C calc'!A0", size=2, examples=["+1 evil", "-2", "@SUM(A1)", "\tx", "fine"],
        first_seen="2026-01-01T00:00Z", last_seen="2026-01-02T00:00Z",
        window_start="2026-01-01", window_end="2026-01-31", computed_at="2026-01-31T00:00Z",
    )  # fmt: skip
    response = client.get(reverse("analytics:export", args=["knowledge_gaps"]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1][0] == "'=cmd|' /C calc'!A0"
    assert rows[1][3].startswith("'+1 evil")
    for name in ("totals", "agents", "volume_by_channel", "sla", "daily", "calibration", "ai_runs"):
        response = client.get(reverse("analytics:export", args=[name]))
        assert response.status_code == 200, name
        for row in csv.reader(io.StringIO(response.content.decode())):
            assert not any(cell[:1] in ("=", "+", "@") for cell in row), (name, row)
    assert client.get(reverse("analytics:export", args=["nope"])).status_code == 404


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@x", "\tx", "\rx"])
def test_safe_cell_prefixes_formula_starts(value):
    assert safe_cell(value) == "'" + value
    assert safe_cell("plain") == "plain"
    assert safe_cell(None) == ""


@pytest.mark.parametrize("name", PAGES)
def test_query_count_does_not_grow_with_the_data(client, manager, name):
    department = DepartmentFactory()
    some_tickets(1, department)
    rollup.rebuild(rollup.today() - dt.timedelta(days=1), rollup.today())
    url = reverse(name)
    client.get(url)  # warm: today's rebuild runs at most once a minute
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    some_tickets(25, department)
    make_agent(department)
    rollup.rebuild(rollup.today() - dt.timedelta(days=1), rollup.today())
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(large) == len(small), [q["sql"][:120] for q in large.captured_queries]
    assert len(large) <= 40


def test_drafting_an_article_from_a_gap_creates_one_draft(client, manager):
    gap = KnowledgeGap.objects.create(
        label="Is there a Linux desktop app?", size=4, examples=["Linux app?", "Do you support Ubuntu?"],
        departments=["Technical Support"], first_seen="2026-01-01T00:00Z", last_seen="2026-01-02T00:00Z",
        window_start="2026-01-01", window_end="2026-01-31", computed_at="2026-01-31T00:00Z",
    )  # fmt: skip
    url = reverse("analytics:gap-draft", args=[gap.pk])
    first = client.post(url)
    second = client.post(url)
    article = Article.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == reverse("admin:knowledge_article_change", args=[article.pk])
    assert (article.status, article.is_public, article.title) == ("draft", False, "Is there a Linux desktop app?")
    assert "Do you support Ubuntu?" in article.body
    assert client.get(url).status_code == 405  # drafting changes data: POST (with CSRF) only


def test_the_console_header_links_to_analytics_for_managers_only(client):
    department = DepartmentFactory()
    client.force_login(make_agent(department))
    assert b'href="/analytics/"' not in client.get(reverse("admin:index")).content
    client.force_login(make_manager(department))
    assert b'href="/analytics/"' in client.get(reverse("admin:index")).content
