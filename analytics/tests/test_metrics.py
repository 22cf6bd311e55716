"""Every metric of docs/metrics.md on a small world built by hand, where each figure is known."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics import metrics, rollup
from analytics.models import DailyCount, DailyTicketStats
from tickets.models import AIDraft, AIRun, Message, Ticket, TicketEvent
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent

pytestmark = pytest.mark.django_db

D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=dt.UTC)


def ticket(ref: str, **fields) -> Ticket:
    return Ticket.objects.create(reference=ref, subject=ref, customer=CustomerFactory(), **fields)


def message(
    t: Ticket, seq: int, kind: str, when: dt.datetime, *, user=None, internal=False, confidence=None, feedback=""
) -> Message:
    m = Message.objects.create(
        ticket=t, seq=seq, author_kind=kind, author_user=user, body=f"{kind} {seq}", is_internal=internal,
        ai_confidence=confidence, feedback=feedback,
    )  # fmt: skip
    Message.objects.filter(pk=m.pk).update(created_at=when)
    return m


def stamp(model, obj, when: dt.datetime) -> None:
    model.objects.filter(pk=obj.pk).update(created_at=when)


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "UTC"
    billing, tech = DepartmentFactory(name="Billing"), DepartmentFactory(name="Tech")
    alice, bob = make_agent(billing, username="alice"), make_agent(tech, username="bob")
    triaged = {"provider": "local", "category": "billing"}

    # T1: answered by the AI alone in 30 s, resolved after 10 min, rated 5; two AI runs.
    t1 = ticket(
        "SF-T1", department=billing, channel="chat", status="resolved", created_at=at(D1, 10),
        first_response_at=at(D1, 10, 0, 30), resolved_at=at(D1, 10, 10), csat_score=5, csat_at=at(D1, 11),
        triage=triaged, category="billing", sentiment="positive",
    )  # fmt: skip
    q1 = message(t1, 1, "customer", at(D1, 10))
    message(t1, 2, "ai", at(D1, 10, 0, 30), confidence=0.85, feedback="yes")
    draft1 = AIDraft.objects.create(
        ticket=t1, in_reply_to=q1, body="answer", confidence=0.85, provider="local", status="sent"
    )
    stamp(AIDraft, draft1, at(D1, 10, 0, 30))
    # ...then the customer says thanks and the assistant replies: not a decision about a question
    thanks = message(t1, 3, "customer", at(D1, 10, 5))
    message(t1, 4, "ai", at(D1, 10, 5, 5))
    closing = AIDraft.objects.create(
        ticket=t1, in_reply_to=thanks, body="You're welcome", confidence=0.0, provider="local", status="sent",
        gate={"act": "thanks", "reply": "act", "acknowledged": True},
    )  # fmt: skip
    stamp(AIDraft, closing, at(D1, 10, 5, 5))
    for i, cost in enumerate(("0.002", "0.003")):
        run = AIRun.objects.create(
            key=f"r1-{i}", ticket=t1, kind="reply", provider="openai", model="gpt-4o-mini", cost=Decimal(cost),
            status="succeeded", latency_ms=100 * (i + 1),
        )  # fmt: skip
        stamp(AIRun, run, at(D1, 10))

    # T2: email, escalated, Alice answers after 1 h (breached), resolved a day later, reopened once, rated 2.
    t2 = ticket(
        "SF-T2", department=billing, channel="email", status="resolved", assignee=alice, created_at=at(D1, 12),
        escalated=True, escalated_at=at(D1, 12, 5), escalation_reason="Customer asks for a human",
        first_response_at=at(D1, 13), first_response_breached=True, resolved_at=at(D2, 12), reopen_count=1,
        csat_score=2, csat_at=at(D2, 13), triage=triaged, category="", sentiment="negative",
    )  # fmt: skip
    q2 = message(t2, 1, "customer", at(D1, 12))
    message(t2, 2, "agent", at(D1, 12, 30), user=alice, internal=True)
    message(t2, 3, "agent", at(D1, 13), user=alice)
    draft2 = AIDraft.objects.create(ticket=t2, in_reply_to=q2, body="draft", confidence=0.3, provider="local")
    stamp(AIDraft, draft2, at(D1, 12, 1))
    correction = TicketEvent.objects.create(
        ticket=t2, kind="triage_changed", field="category", from_value="billing", to_value="refunds",
        actor=alice, actor_kind="agent",
    )  # fmt: skip
    stamp(TicketEvent, correction, at(D1, 12, 40))

    # T3: Bob answers in 10 min, still open; one AI run on D2.
    t3 = ticket(
        "SF-T3", department=tech, channel="chat", status="open", assignee=bob, created_at=at(D2, 9),
        first_response_at=at(D2, 9, 10), triage=triaged, category="bug",
    )  # fmt: skip
    message(t3, 1, "customer", at(D2, 9))
    message(t3, 2, "agent", at(D2, 9, 10), user=bob)
    run = AIRun.objects.create(key="r3", ticket=t3, kind="triage", provider="local", cost=Decimal("0.005"))
    stamp(AIRun, run, at(D2, 9))

    # T4: unrouted API ticket, nothing else happened.
    ticket("SF-T4", channel="api", status="new", created_at=at(D3, 8))
    rollup.rebuild(D1, D3)
    return {"billing": billing, "tech": tech, "alice": alice, "bob": bob}


def test_overview_totals(world):
    t = metrics.totals(metrics.Filters(D1, D3))
    assert t["created"] == 4
    assert t["first_responses"] == 3
    assert t["median_first_response_min"] == 10.0  # median of 30 s, 10 min, 60 min
    assert t["resolved"] == 2
    assert t["median_resolution_min"] == 725.0  # median of 10 min and 24 h
    assert t["resolved_by_ai"] == 1
    assert t["automation_rate"] == 0.5
    assert (t["escalated"], t["escalation_rate"]) == (1, 0.25)
    assert (t["csat_count"], t["csat_satisfied"], t["csat_mean"]) == (2, 0.5, 3.5)
    assert t["ai_cost"] == Decimal("0.0100")
    assert t["ai_cost_per_ticket"] == Decimal("0.002500")
    assert (t["ai_decisions"], t["ai_sent"]) == (2, 1)


def test_filters_by_department_channel_and_day(world):
    billing = metrics.totals(metrics.Filters(D1, D3, department_id=world["billing"].pk))
    assert (billing["created"], billing["resolved"], billing["ai_cost"]) == (2, 2, Decimal("0.0050"))
    assert metrics.totals(metrics.Filters(D1, D3, department_id=0))["created"] == 1  # unrouted only
    assert metrics.totals(metrics.Filters(D1, D3, channel="chat"))["created"] == 2
    day2 = metrics.totals(metrics.Filters(D2, D2))
    # Event days: D2 has T3's creation and first response, T2's resolution and rating.
    assert (day2["created"], day2["first_responses"], day2["resolved"], day2["csat_count"]) == (1, 1, 1, 1)
    assert day2["median_resolution_min"] == 1440.0


def test_daily_series_and_distributions(world):
    f = metrics.Filters(D1, D3)
    series = metrics.daily(f)
    assert series["days"] == [D1, D2, D3]
    assert series["volume_by_channel"] == {"api": [0, 0, 1], "chat": [1, 1, 0], "email": [1, 0, 0]}
    assert series["volume_by_department"]["Billing"] == [2, 0, 0]
    assert series["volume_by_department"][metrics.NO_DEPARTMENT] == [0, 0, 1]
    assert series["automation"] == [1, 0, 0]
    assert series["escalation"] == [1, 0, 0]
    assert series["csat_share"] == [1.0, 0.0, None]
    assert series["cost_per_ticket"][0] == pytest.approx(0.005 / 2)
    assert dict(metrics.first_response_distribution(f)) == {
        "< 1 min": 1, "1–5 min": 0, "5–15 min": 1, "15–60 min": 0, "1–4 h": 1, "4–24 h": 0, "> 24 h": 0,
    }  # fmt: skip
    assert dict(metrics.resolution_distribution(f))["< 1 h"] == 1
    assert dict(metrics.resolution_distribution(f))["1–3 days"] == 1  # exactly 24 h is in 1–3 days
    assert dict(metrics.counts(f, "category")) == {"billing": 1, "bug": 1, "uncategorised": 2}
    assert dict(metrics.counts(f, "sentiment")) == {"negative": 1, "positive": 1, "unknown": 2}


def test_sla_compliance_by_department_and_priority(world):
    rows = {(r["department"], r["priority"]): r for r in metrics.sla_compliance(metrics.Filters(D1, D3))}
    billing = rows[("Billing", "normal")]
    assert (billing["first_responses"], billing["first_response_met"]) == (2, 0.5)
    assert (billing["resolved"], billing["resolution_met"]) == (2, 1.0)
    assert rows[("Tech", "normal")]["first_response_met"] == 1.0


def test_agent_performance(world):
    rows = {r["agent"]: r for r in metrics.agents(metrics.Filters(D1, D3))}
    alice = rows["alice"]
    assert alice["tickets_handled"] == 1
    assert alice["median_first_response_min"] == 60.0
    assert alice["median_resolution_min"] == 1440.0
    assert alice["reopen_rate"] == 1.0
    assert (alice["csat_satisfied"], alice["csat_count"]) == (0.0, 1)
    assert (alice["public_replies"], alice["internal_notes"], alice["internal_note_ratio"]) == (1, 1, 0.5)
    bob = rows["bob"]
    assert (bob["tickets_handled"], bob["median_first_response_min"], bob["public_replies"]) == (0, 10.0, 1)


def test_ai_performance(world):
    f = metrics.Filters(D1, D3)
    ai = metrics.ai_summary(f)
    assert (ai["decisions"], ai["auto_answered"], ai["auto_answered_share"]) == (2, 1, 0.5)
    assert ai["escalations_by_reason"] == [("Customer asks for a human", 1)]
    assert ai["calibration"] == [
        {
            "confidence": "0.8–0.9",
            "sent": 1,
            "bad_outcome": 0,
            "bad_share": 0.0,
            "customer_yes": 1,
            "customer_no": 0,
            "no_share": 0.0,
        }
    ]
    assert ai["triaged"] == 3
    assert ai["corrections"][0] == {"field": "category", "corrections": 1, "rate": round(1 / 3, 4)}
    runs = {(r["provider"], r["kind"]): r for r in metrics.ai_runs(f)}
    reply = runs[("openai", "reply")]
    assert (reply["runs"], reply["cost"], reply["latency_p50_ms"]) == (2, Decimal("0.0050"), 150)
    assert runs[("local", "triage")]["runs"] == 1


def test_rebuild_is_idempotent_and_follows_a_reopen(world):
    before = list(DailyTicketStats.objects.order_by("pk").values_list("day", "created", "resolved"))
    rollup.rebuild(D1, D3)
    assert sorted(DailyTicketStats.objects.values_list("day", "created", "resolved")) == sorted(before)
    assert DailyCount.objects.filter(dimension="category").count() == 4  # (day, category) pairs

    # T1 is reopened: it no longer counts as resolved on D1 once D1 is rebuilt.
    Ticket.objects.filter(reference="SF-T1").update(status="open", resolved_at=None, reopen_count=1)
    rollup.rebuild(D1, D1)
    t = metrics.totals(metrics.Filters(D1, D3))
    assert (t["resolved"], t["resolved_by_ai"]) == (1, 0)


def test_today_is_kept_fresh_by_the_pages(world, settings):
    from django.core.cache import cache

    cache.delete("sf:analytics:fresh")
    ticket("SF-T5", channel="chat", status="new")  # created now
    rollup.ensure_fresh()
    today = rollup.today()
    assert metrics.totals(metrics.Filters(today, today))["created"] == 1
    assert metrics.live(metrics.Filters(today, today))["new_today"] == 1


def test_the_rollup_command_rebuilds_a_range_and_refuses_a_backwards_one(world, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    DailyTicketStats.objects.all().delete()
    call_command("analytics_rollup", "--since", "2026-03-02", "--until", "2026-03-04")
    assert "Rebuilt 3 days" in capsys.readouterr().out
    assert metrics.totals(metrics.Filters(D1, D3))["created"] == 4
    with pytest.raises(CommandError, match="after"):
        call_command("analytics_rollup", "--since", "2026-03-05", "--until", "2026-03-01")
    call_command("analytics_rollup", "--all")
    assert metrics.totals(metrics.Filters(D1, D3))["created"] == 4
