"""The savings page (docs/metrics.md, Savings): exact figures on a hand-built world, filters, CSV, access."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from analytics import rollup, savings
from analytics.metrics import Filters
from analytics.tests.test_metrics import at, message, stamp, ticket
from tickets import services
from tickets.models import AIRun
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager

pytestmark = pytest.mark.django_db

D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)


@pytest.fixture(autouse=True)
def leave_english():
    yield
    translation.deactivate()


def runs(t, *costs_and_times: tuple[str, dt.datetime]) -> None:
    for i, (cost, when) in enumerate(costs_and_times):
        run = AIRun.objects.create(key=f"{t.reference}-{i}", ticket=t, kind="reply", provider="openai",
                                   cost=Decimal(cost), status="succeeded")  # fmt: skip
        stamp(AIRun, run, when)


def ai_alone(ref: str, department, resolved: dt.datetime, **fields):
    t = ticket(ref, department=department, status="resolved", created_at=resolved - dt.timedelta(minutes=5),
               resolved_at=resolved, **fields)  # fmt: skip
    message(t, 1, "customer", resolved - dt.timedelta(minutes=5))
    message(t, 2, "ai", resolved - dt.timedelta(minutes=4), confidence=0.9)
    return t


@pytest.fixture
def world(settings):
    """Three tickets the AI resolved alone, two a person resolved, one still open (all AI costs known)."""
    settings.TIME_ZONE = "UTC"
    settings.HUMAN_COST_PER_TICKET = Decimal("5.00")
    settings.MINUTES_PER_HUMAN_TICKET = 12.0
    settings.SAVINGS_PROJECTION_DAYS = 2
    billing, tech = DepartmentFactory(name="Billing"), DepartmentFactory(name="Tech")
    alice = make_agent(billing, username="alice")

    a1 = ai_alone("SF-A1", billing, at(D1, 10), channel="chat")
    runs(a1, ("0.010", at(D1, 9, 55)), ("0.020", at(D1, 9, 56)))
    a2 = ai_alone("SF-A2", tech, at(D2, 10), channel="chat")  # its first run was the day before
    runs(a2, ("0.004", at(D1, 23)), ("0.006", at(D2, 9, 56)))
    a3 = ai_alone("SF-A3", billing, at(D3, 10), channel="chat")
    runs(a3, ("0.006", at(D3, 9, 56)))

    h1 = ai_alone("SF-H1", billing, at(D2, 15), channel="email")  # …but an agent replied too
    message(h1, 3, "agent", at(D2, 14), user=alice)
    runs(h1, ("0.050", at(D2, 14)))
    h2 = ticket("SF-H2", department=tech, channel="chat", status="resolved", created_at=at(D3, 8),
                resolved_at=at(D3, 12), escalated=True, escalated_at=at(D3, 8, 1))  # fmt: skip
    runs(h2, ("0.100", at(D3, 8)))
    open_one = ticket("SF-O1", channel="api", status="open", created_at=at(D1, 8))
    runs(open_one, ("0.200", at(D1, 8)))
    rollup.rebuild(D1, D3)
    return {"billing": billing, "tech": tech}


def test_savings_over_the_whole_range(world):
    s = savings.savings(Filters(D1, D3))
    assert (s["resolved"], s["resolved_by_ai"], s["resolved_by_people"]) == (5, 3, 2)
    assert s["ai_cost_of_ai_resolved"] == Decimal("0.0460")  # 0.030 + 0.010 + 0.006, every run of those tickets
    assert s["ai_cost_per_ai_resolved_ticket"] == Decimal("0.0153")  # 0.046 / 3
    assert s["human_cost_per_ticket"] == Decimal("5.00")
    assert s["saving_per_ticket"] == Decimal("4.9847")
    assert s["money_saved"] == Decimal("14.95")  # 3 × 5.00 − 0.046
    assert s["hours_saved"] == 0.6  # 3 × 12 min
    assert s["ai_cost"] == Decimal("0.3960")
    # the last 2 days of the range: D2 (0.006 + 0.050) and D3 (0.006 + 0.100) → 0.162 / 2 × 30
    assert (s["projection_start"], s["projection_end"], s["projection_days"]) == (D2, D3, 2)
    assert s["projection_ai_cost"] == Decimal("0.1620")
    assert s["projected_monthly_ai_cost"] == Decimal("2.43")


def test_savings_follow_the_department_channel_and_day_filters(world):
    billing = savings.savings(Filters(D1, D3, department_id=world["billing"].pk))
    assert (billing["resolved"], billing["resolved_by_ai"], billing["ai_cost_of_ai_resolved"]) == (
        3, 2, Decimal("0.0360"),
    )  # fmt: skip
    assert (billing["ai_cost_per_ai_resolved_ticket"], billing["money_saved"]) == (Decimal("0.0180"), Decimal("9.96"))
    assert billing["hours_saved"] == 0.4
    assert billing["projected_monthly_ai_cost"] == Decimal("0.84")  # (0.050 + 0.006) / 2 × 30

    unrouted = savings.savings(Filters(D1, D3, department_id=0))
    assert (unrouted["resolved_by_ai"], unrouted["ai_cost_per_ai_resolved_ticket"]) == (0, None)
    assert (unrouted["saving_per_ticket"], unrouted["money_saved"], unrouted["ai_cost"]) == (
        None, Decimal("0.00"), Decimal("0.2000"),
    )  # fmt: skip

    email = savings.savings(Filters(D1, D3, channel="email"))
    assert (email["resolved"], email["resolved_by_ai"], email["money_saved"]) == (1, 0, Decimal("0.00"))

    # D2 alone: SF-A2's run of D1 still counts toward what that ticket cost; the day's spend does not
    d2 = savings.savings(Filters(D2, D2))
    assert (d2["resolved_by_ai"], d2["ai_cost_of_ai_resolved"], d2["ai_cost"]) == (
        1, Decimal("0.0100"), Decimal("0.0560"),
    )  # fmt: skip
    assert (d2["projection_start"], d2["projection_end"], d2["projected_monthly_ai_cost"]) == (D2, D2, Decimal("1.68"))


def test_a_human_cost_below_the_ai_cost_shows_a_loss(world, settings):
    settings.HUMAN_COST_PER_TICKET = Decimal("0.01")
    s = savings.savings(Filters(D1, D1))
    assert (s["saving_per_ticket"], s["money_saved"]) == (Decimal("-0.0200"), Decimal("-0.02"))


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        (D1, D3, (D2, D3)),  # a past range: its last whole days
        (D1, D3 + dt.timedelta(days=1), (D2, D3)),  # ending today: today is still running, left out
        (D3 + dt.timedelta(days=1), D3 + dt.timedelta(days=1), (D3 + dt.timedelta(days=1),) * 2),  # today alone
        (D3, D3, (D3, D3)),  # shorter than the window
    ],
)
def test_projection_window(settings, start, end, window):
    settings.SAVINGS_PROJECTION_DAYS = 2
    assert savings.projection_window(Filters(start, end), today=D3 + dt.timedelta(days=1)) == window


# --- page and CSV ---------------------------------------------------------------------------------


@pytest.fixture
def manager(client):
    user = make_manager(username="maria")
    client.force_login(user)
    return user


def test_the_savings_page_shows_the_figures(client, manager, world):
    response = client.get(reverse("analytics:savings"), {"start": D1, "end": D3})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-current="page">Savings</a>' in html
    for shown in ("$0.0153", "$5.00", "$14.95", "0.6 h", "$2.43", "3 tickets resolved by the AI alone, $0.0460"):
        assert shown in html, shown
    assert "3 tickets × 12 min" in html
    assert "in the last 2 days of the range" in html


def test_the_savings_csv_has_the_same_figures(client, manager, world):
    query = {"start": D1, "end": D3, "department": world["billing"].pk}
    response = client.get(reverse("analytics:export", args=["savings"]), query)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["metric", "value"]
    figures = dict(rows[1:])
    assert figures == {
        "currency": "USD", "resolved": "3", "resolved_by_ai": "2", "resolved_by_people": "1",
        "ai_cost_of_ai_resolved": "0.0360", "ai_cost_per_ai_resolved_ticket": "0.0180",
        "human_cost_per_ticket": "5.00", "saving_per_ticket": "4.9820", "money_saved": "9.96",
        "minutes_per_human_ticket": "12.0", "hours_saved": "0.4", "hours_from": "setting MINUTES_PER_HUMAN_TICKET",
        "ai_cost": "0.0860", "projection_start": "2026-03-03", "projection_end": "2026-03-04",
        "projection_days": "2", "projection_ai_cost": "0.0560", "projected_monthly_ai_cost": "0.84",
    }  # fmt: skip


def test_only_managers_see_savings(client):
    url, csv_url = reverse("analytics:savings"), reverse("analytics:export", args=["savings"])
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    assert client.get(csv_url).status_code == 302
    client.force_login(make_agent(DepartmentFactory()))
    refused = client.get(url)
    assert refused.status_code == 403
    assert b"Managers group" in refused.content
    refused_csv = client.get(csv_url)
    assert refused_csv.status_code == 403
    assert not refused_csv["Content-Type"].startswith("text/csv")
    assert client.post(url).status_code in (403, 405)


def test_bad_filters_get_a_400(client, manager):
    for url in (reverse("analytics:savings"), reverse("analytics:export", args=["savings"])):
        response = client.get(url, {"start": "2026-03-05", "end": "2026-03-01"})
        assert response.status_code == 400
        assert "start date must be on or before" in response.content.decode()


def resolved_by_ai(n: int, department) -> None:
    for i in range(n):
        t = services.ticket_create(customer=CustomerFactory(), subject=f"Q{i}", body="How?", department=department)
        services.message_create(ticket=t, author_kind="ai", body="Like this.", ai_confidence=0.9)
        AIRun.objects.create(key=f"q-{t.pk}", ticket=t, kind="reply", provider="openai", cost=Decimal("0.01"))
        services.ticket_resolve(ticket=t)


@pytest.mark.parametrize("name", ["page", "csv"])
def test_query_count_does_not_grow_with_the_data(client, manager, name):
    department = DepartmentFactory()
    url = reverse("analytics:savings") if name == "page" else reverse("analytics:export", args=["savings"])
    query = {"department": department.pk}
    resolved_by_ai(1, department)
    rollup.rebuild(rollup.today() - dt.timedelta(days=1), rollup.today())
    client.get(url, query)  # warm: today's rebuild runs at most once a minute
    with CaptureQueriesContext(connection) as small:
        assert client.get(url, query).status_code == 200
    resolved_by_ai(20, department)
    rollup.rebuild(rollup.today() - dt.timedelta(days=1), rollup.today())
    with CaptureQueriesContext(connection) as large:
        response = client.get(url, query)
    assert response.status_code == 200
    assert len(large) == len(small), [q["sql"][:120] for q in large.captured_queries]
    if name == "csv":
        assert dict(list(csv.reader(io.StringIO(response.content.decode())))[1:])["resolved_by_ai"] == "21"


def test_a_loss_stays_a_number_in_the_csv(client, manager, world, settings):
    settings.HUMAN_COST_PER_TICKET = Decimal("0.01")
    response = client.get(reverse("analytics:export", args=["savings"]), {"start": D1, "end": D1})
    figures = dict(list(csv.reader(io.StringIO(response.content.decode())))[1:])
    assert (figures["saving_per_ticket"], figures["money_saved"]) == ("-0.0200", "-0.02")  # not '-0.02 (text)


def test_the_savings_page_in_german(client, manager, world):
    """(The German request leaves German active in this thread: ``leave_english`` resets it.)"""
    response = client.get(reverse("analytics:savings"), {"start": D1, "end": D3}, HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert "Eingespartes Geld" in html
    assert "14,95" in html  # numbers the German way
    assert "3 Tickets × 12 Min. (Einstellung MINUTES_PER_HUMAN_TICKET)" in html


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"HUMAN_COST_PER_TICKET": "six"}, "HUMAN_COST_PER_TICKET must be an amount"),
        ({"HUMAN_COST_PER_TICKET": "-1"}, "HUMAN_COST_PER_TICKET must be an amount"),
        ({"HUMAN_COST_PER_TICKET": "NaN"}, "HUMAN_COST_PER_TICKET must be an amount"),
        ({"MINUTES_PER_HUMAN_TICKET": "-5"}, "MINUTES_PER_HUMAN_TICKET must be"),
        ({"SAVINGS_PROJECTION_DAYS": "0"}, "SAVINGS_PROJECTION_DAYS 1–365"),
        ({"HUMAN_COST_PER_TICKET": "7.5", "SAVINGS_PROJECTION_DAYS": "14"}, "7.5 14"),
    ],
)
def test_savings_settings_are_checked_at_start_up(env, said):
    code = "from supportflow import settings as s; print(s.HUMAN_COST_PER_TICKET, s.SAVINGS_PROJECTION_DAYS)"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "SECRET_KEY": "x", **env}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert said in result.stdout + result.stderr
    assert (result.returncode == 0) == (said == "7.5 14")
