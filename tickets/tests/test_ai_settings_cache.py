"""What the pipeline keeps per process between messages (``tickets.ai.versions.Snapshot``): the escalation
rules and the calibrated thresholds are read once per generation, a save or delete of either makes every
process read them again, and what no signal sees is read again within ``MAX_AGE_S``. Against the real
database and Redis; the pipeline runs in this process."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge.models import DEFAULT_NAMESPACE
from tickets import services
from tickets.ai import pipeline, versions
from tickets.models import AIDraft, Department, EscalationRule, KnowledgeCalibration, Ticket
from tickets.tests.test_pipeline import customer_writes, world  # noqa: F401 (the fixture)

REFUND = "I was charged twice after upgrading, I want a refund of one charge"


def _calibrate(threshold: float) -> KnowledgeCalibration:
    """What the calibration beat stores (``services.knowledge_calibration_store``)."""
    return services.knowledge_calibration_store(
        namespace=DEFAULT_NAMESPACE,
        threshold=threshold,
        fingerprint="test",
        articles=1,
        pseudo_questions=1,
        confused_share=0.0,
        twin_share=0.0,
        wrong_cap=0.02,
        figures={},
    )


def test_the_rules_and_thresholds_are_read_once_per_generation(db):
    _calibrate(0.61)
    first = versions.snapshot()
    with CaptureQueriesContext(connection) as queries:
        again = versions.snapshot()
    assert again is first
    assert len(queries) == 0
    assert first.calibrated[DEFAULT_NAMESPACE] == pytest.approx(0.61)
    assert [r.condition for r in first.rules] == [
        r.condition for r in EscalationRule.objects.filter(is_active=True).order_by("order", "pk")
    ]


def test_saving_a_rule_or_a_calibration_makes_the_next_message_read_them_again(db):
    before = versions.snapshot()
    rule = EscalationRule.objects.create(name="Refunds", condition="keywords", value="refund", reason="People decide")
    with_rule = versions.snapshot()
    assert with_rule is not before
    assert rule.pk in {r.pk for r in with_rule.rules}
    rule.is_active = False
    rule.save()
    assert rule.pk not in {r.pk for r in versions.snapshot().rules}
    rule.delete()
    _calibrate(0.7)
    assert versions.snapshot().calibrated[DEFAULT_NAMESPACE] == pytest.approx(0.7)
    _calibrate(0.55)
    assert versions.snapshot().calibrated[DEFAULT_NAMESPACE] == pytest.approx(0.55)


def test_what_no_signal_sees_is_read_again_within_the_maximum_age(db, monkeypatch):
    rule = EscalationRule.objects.create(name="Refunds", condition="keywords", value="refund", reason="People decide")
    assert rule.pk in {r.pk for r in versions.snapshot().rules}
    EscalationRule.objects.filter(pk=rule.pk).update(is_active=False)  # no signal: a migration, a bulk edit
    assert rule.pk in {r.pk for r in versions.snapshot().rules}  # the process's copy, still young
    monkeypatch.setattr(versions, "MAX_AGE_S", 0.0)
    assert rule.pk not in {r.pk for r in versions.snapshot().rules}


def test_a_rule_an_admin_adds_between_two_messages_decides_the_second(world):  # noqa: F811
    first = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    assert pipeline.process_message(message_id=first.pk) == "sent"  # the rules are now in the process's copy
    EscalationRule.objects.create(name="Refunds", condition="keywords", value="refund", reason="People decide")
    second = customer_writes(REFUND)
    assert pipeline.process_message(message_id=second.pk) == "escalated"
    assert Ticket.objects.get(pk=second.ticket_id).escalation_reason == "People decide"


def test_a_calibration_between_two_messages_sets_the_second_ones_threshold(world):  # noqa: F811
    Department.objects.update(ai_threshold_mode=Department.ThresholdMode.AUTO)  # queues follow the calibration
    first = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    assert pipeline.process_message(message_id=first.pk) == "sent"
    _calibrate(1.0)  # the knowledge base's new calibration: no answer reaches it
    second = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    assert pipeline.process_message(message_id=second.pk) == "clarified"  # not sure enough to answer: it asks
    gate = AIDraft.objects.get(in_reply_to=second).gate
    assert gate["threshold"] == pytest.approx(1.0)
    assert gate["threshold_source"] == "calibrated"


def test_an_answered_question_costs_the_pipeline_a_bounded_number_of_queries(world):  # noqa: F811
    """The worker's database work was a third of its CPU per message; this guards what issue 15 cut
    (the rules, the calibration, the language of the "working" notice and three counts of the thread
    read again on every message; a second row lock for the reply)."""
    warm = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    pipeline.process_message(message_id=warm.pk)  # the versions, rules and models loaded once
    message = customer_writes("My notes are stuck syncing on my Android phone, it says syncing forever")
    with CaptureQueriesContext(connection) as queries:
        assert pipeline.process_message(message_id=message.pk) == "sent"
    # the test's own transaction turns each of the pipeline's into a savepoint: those are not counted
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 36, "\n".join(statements)
    locked_reads = [s for s in statements if s.startswith('SELECT "tickets_ticket"') and "FOR UPDATE" in s]
    assert len(locked_reads) == 2  # the triage's and the reply's transactions, one row lock each
    assert not [s for s in statements if "tickets_escalationrule" in s or "tickets_knowledgecalibration" in s]


def test_an_evaluation_switching_a_rule_off_is_seen_at_once(db):
    """The evaluations switch the out-of-scope rule off with a bulk update, which sends no signal."""
    from tickets.ai import rules

    rule = EscalationRule.objects.create(name="Scope", condition="out_of_scope", value="", reason="Not ours")
    assert rule.pk in {r.pk for r in versions.snapshot().rules}
    rules.switch_off(EscalationRule.Condition.OUT_OF_SCOPE)
    assert not [r for r in versions.snapshot().rules if r.condition == EscalationRule.Condition.OUT_OF_SCOPE]
