from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django.test.utils import override_settings

from supportflow.demo import history
from supportflow.demo.console import console_demo_tickets
from supportflow.demo.seed import DEMO_HISTORY_TICKETS, demo_load
from supportflow.demo.texts import CONVERSATIONS
from tickets import sla
from tickets.models import AIDraft, AIRun, Customer, Message, Ticket, TicketEvent

END = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
DEMO_TICKETS = (
    len(CONVERSATIONS) + console_demo_tickets()
)  # the demo conversations and the console's (opened by agents, merged)


@pytest.fixture
def demo(db):
    """The demo queues, SLA policies, agents and conversations, without the knowledge base or the model."""
    with override_settings(FEATURE_AI_PIPELINE=False):
        demo_load()


def _fingerprint(tickets) -> list[tuple]:
    """What a run produced, without what depends on the database (ids, references, keys, e-mails)."""
    out = []
    for t in tickets.order_by("created_at", "pk").prefetch_related("messages", "events", "ai_runs", "ai_drafts"):
        out.append(
            (
                t.created_at, t.subject, t.status, t.priority, t.channel, t.category, t.language, t.department_id,
                t.assignee_id, t.escalation_reason, t.first_response_at, t.resolved_at, t.closed_at, t.reopen_count,
                t.csat_score, t.csat_at, t.ai_cost, t.customer.name, t.customer.is_vip,
                [(m.seq, m.author_kind, m.body, m.is_internal, m.ai_confidence, m.created_at) for m in t.messages.all()],
                sorted((e.created_at, e.kind, e.field, e.from_value, e.to_value, e.actor_kind) for e in t.events.all()),
                sorted((r.kind, r.provider, r.model, r.tokens_in, r.tokens_out, r.cost, r.status, r.latency_ms)
                       for r in t.ai_runs.all()),
                sorted((d.status, d.confidence, d.provider, d.body) for d in t.ai_drafts.all()),
            )
        )  # fmt: skip
    return out


def test_the_column_lists_cover_every_field():
    history.check_columns()


@pytest.mark.django_db
def test_generate_writes_the_counts_it_returns(demo):
    before = {
        "customers": Customer.objects.count(),
        "messages": Message.objects.count(),
        "events": TicketEvent.objects.count(),
        "ai_runs": AIRun.objects.count(),
        "ai_drafts": AIDraft.objects.count(),
    }

    counts = history.generate(300, days=60, seed=3, end=END)

    assert counts["tickets"] == 300
    assert Ticket.objects.count() == DEMO_TICKETS + 300
    for name, value in before.items():
        model = {"customers": Customer, "messages": Message, "events": TicketEvent}.get(name)
        model = model or {"ai_runs": AIRun, "ai_drafts": AIDraft}[name]
        assert model.objects.count() == value + counts[name]
    assert counts["messages"] > 2 * 300
    assert 0 < counts["customers"] < 300
    assert counts["ai_runs"] >= 300


@pytest.mark.django_db
def test_generated_tickets_keep_the_services_invariants(demo):
    history.generate(300, days=60, seed=5, end=END)
    tickets = list(
        Ticket.objects.filter(created_at__gte=END - dt.timedelta(days=60), created_at__lt=END).select_related(
            "department__sla_policy"
        )
    )
    assert len(tickets) == 300
    by_id = {t.pk: t for t in tickets}
    references = [t.reference for t in sorted(tickets, key=lambda t: (t.created_at, t.pk))]
    assert references == sorted(references)  # taken from the sequence in time order
    assert all(r.startswith("SF-") for r in references)

    seqs = defaultdict(list)
    for ticket_id, seq, created_at, kind in Message.objects.filter(ticket__in=tickets).values_list(
        "ticket_id", "seq", "created_at", "author_kind"
    ):
        seqs[ticket_id].append((seq, created_at, kind))
    runs = dict(
        AIRun.objects.filter(ticket__in=tickets).values_list("ticket_id").annotate(total=Sum("cost")).order_by()
    )
    events = defaultdict(Counter)
    for ticket_id, kind, from_value, to_value in TicketEvent.objects.filter(ticket__in=tickets).values_list(
        "ticket_id", "kind", "from_value", "to_value"
    ):
        events[ticket_id][kind] += 1
        if kind == TicketEvent.Kind.STATUS_CHANGED and (from_value, to_value) == ("resolved", "open"):
            events[ticket_id]["reopened"] += 1

    for t in tickets:
        thread = sorted(seqs[t.pk])
        assert [s for s, _, _ in thread] == list(range(1, len(thread) + 1)), t.reference
        assert t.last_message_seq == len(thread)
        times = [c for _, c, _ in thread]
        assert times == sorted(times)
        assert times[0] == t.created_at
        assert thread[0][2] == "customer"
        public_replies = [c for _, c, k in thread if k in ("ai", "agent")]
        if t.first_response_at:
            assert t.created_at <= t.first_response_at
            assert t.first_response_at in public_replies
        if t.resolved_at:
            assert (t.first_response_at or t.created_at) <= t.resolved_at
        if t.closed_at:
            assert t.resolved_at is not None
            assert t.resolved_at <= t.closed_at
        assert (t.resolved_at is not None) == (t.status in ("resolved", "closed"))
        assert (t.closed_at is not None) == (t.status == "closed")
        assert t.ai_cost == runs.get(t.pk, Decimal(0))
        if t.csat_score is not None:
            assert t.status in ("resolved", "closed")
            assert 1 <= t.csat_score <= 5
            assert t.csat_at >= t.resolved_at
            assert events[t.pk][TicketEvent.Kind.CSAT_RECORDED] == 1
        assert events[t.pk]["reopened"] == t.reopen_count
        assert events[t.pk][TicketEvent.Kind.CREATED] == 1
        assert events[t.pk][TicketEvent.Kind.ESCALATED] == (1 if t.escalated else 0)
        assert t.escalated == (t.escalated_at is not None) == bool(t.escalation_reason)
        if t.department is None:
            assert t.first_response_due_at is None
        else:
            target = t.department.sla_policy.targets.get(priority=t.priority)
            calendar = sla.BusinessCalendar.from_policy(t.department.sla_policy)
            assert t.first_response_due_at == sla.add_minutes(t.created_at, target.first_response_minutes, calendar)
            if t.first_response_at:
                assert t.first_response_breached == (t.first_response_at > t.first_response_due_at)
            if t.resolved_at and t.resolution_breached is False:
                assert t.resolved_at <= t.resolution_due_at
        if t.assignee_id and t.department_id:
            assert t.department.agents.filter(user_id=t.assignee_id).exists()

    drafts = AIDraft.objects.filter(ticket__in=tickets).select_related("in_reply_to", "sent_message")
    assert drafts.exists()
    for draft in drafts:
        assert draft.in_reply_to.author_kind == "customer"
        assert draft.ticket_id == draft.in_reply_to.ticket_id
        if draft.status == "sent":
            assert draft.sent_message.author_kind == "ai"
            assert draft.confidence >= draft.gate["threshold"]
        if draft.status == "used":
            assert draft.sent_message.author_kind == "agent"
            assert draft.used_by_id
        if draft.status != "discarded":
            assert {"threshold", "triggers", "confidence", "stages_ms"} <= set(draft.gate)

    statuses = Counter(t.status for t in tickets)
    assert statuses["closed"] + statuses["resolved"] > 150
    assert {"new", "open"} & set(statuses)  # the last hours are still being worked
    assert sum(t.escalated for t in tickets) > 30
    assert sum(t.department_id is None for t in tickets) > 0
    assert any(t.reopen_count for t in tickets)
    rated = [t.csat_score for t in tickets if t.csat_score]
    assert len(rated) > 30
    assert sum(rated) / len(rated) > 3.3
    assert {t.channel for t in tickets} >= {"chat", "email"}
    assert Counter(t.language for t in tickets).most_common(1)[0][0] == "en"
    corrections = TicketEvent.objects.filter(ticket__in=tickets, actor_kind="agent", kind="triage_changed")
    assert corrections.filter(field="category").exists()
    gaps = Ticket.objects.filter(
        pk__in=by_id,
        escalation_reason__in=["No knowledge-base article answers it", "AI not confident enough to answer"],
    )
    assert gaps.count() > 5
    providers = set(AIRun.objects.filter(ticket__in=tickets).values_list("provider", "model"))
    assert ("openai", "gpt-4o-mini") in providers
    assert ("local", "triage-local") in providers


@pytest.mark.django_db
def test_same_seed_same_data_and_a_second_run_adds_more(demo):
    window = {"created_at__gte": END - dt.timedelta(days=30), "created_at__lt": END}

    history.generate(120, days=30, seed=11, end=END)
    first_ids = set(Ticket.objects.filter(**window).values_list("pk", flat=True))
    first = _fingerprint(Ticket.objects.filter(pk__in=first_ids))
    history.generate(120, days=30, seed=11, end=END)
    second = _fingerprint(Ticket.objects.filter(**window).exclude(pk__in=first_ids))
    history.generate(120, days=30, seed=12, end=END)
    newest = Ticket.objects.filter(**window).exclude(pk__in=first_ids).order_by("-pk")[:120]
    third = _fingerprint(Ticket.objects.filter(pk__in=[t.pk for t in newest]))

    assert Ticket.objects.filter(**window).count() == 360
    assert second == first
    assert third != first
    emails = list(Customer.objects.exclude(email="").values_list("email", flat=True))
    assert len({e.lower() for e in emails}) == len(emails)
    assert Ticket.objects.values("reference").annotate(n=Count("pk")).filter(n__gt=1).count() == 0


@pytest.mark.django_db
def test_seed_demo_tickets_option(settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path

    call_command("seed_demo", "--no-kb")  # the first load adds its own 90 days of history
    capsys.readouterr()
    before = Ticket.objects.count()

    call_command("seed_demo", "--no-kb", "--tickets", "40", "--days", "10", "--seed", "2")

    out = capsys.readouterr().out
    assert "History added: 40 tickets" in out
    assert "40/40 tickets" in out
    assert Ticket.objects.count() == before + 40
    assert before == DEMO_TICKETS + DEMO_HISTORY_TICKETS
