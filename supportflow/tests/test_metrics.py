"""Business metrics on /metrics: counted on commit by the real services, kept in the real Redis (so any
process's events show on any web process), gauges read at scrape time, and never a failed request when
Redis is away."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from supportflow import metrics
from supportflow.celery import app
from supportflow.llm import breaker
from tickets import services
from tickets.ai import runs
from tickets.models import EscalationRule, Ticket
from tickets.tasks import sla_sweep
from tickets.tests.factories import DepartmentFactory, make_ticket

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def metrics_store(settings):
    """This test's own counters: a fresh key prefix in the test broker's Redis, removed afterwards."""
    settings.METRICS_KEY_PREFIX = f"sf:test:metrics:{uuid.uuid4().hex}:"
    metrics.reset_pause()
    yield settings.METRICS_KEY_PREFIX
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(f"{settings.METRICS_KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    client.close()
    metrics.reset_pause()


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def series(samples: dict, name: str) -> dict[tuple, float]:
    return {labels: v for (sample_name, labels), v in samples.items() if sample_name == name}


@pytest.mark.django_db
def test_business_events_are_counted_once_committed(
    client, metrics_store, department, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(department=department)
        services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Try turning sync off.")
        services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="note", is_internal=True)
        services.ticket_escalate(ticket=ticket, reason="Needs a specialist", actor=agent)
        services.ticket_resolve(ticket=ticket, actor=agent)
        services.ticket_record_csat(ticket=ticket, score=4)
        run, _ = runs.ai_run_begin(key=f"reply:test:{ticket.pk}", kind="reply", provider="openai", ticket=ticket)
        runs.ai_run_finish(run=run, succeeded=True, cost="0.0025", latency_ms=1200)
        runs.ai_run_finish(run=run, succeeded=True, cost="1.0", latency_ms=99)  # finished already: no-op
        local, _ = runs.ai_run_begin(key=f"triage:test:{ticket.pk}", kind="triage", provider="local")
        runs.ai_run_finish(run=local, succeeded=False, latency_ms=7, error="model missing")

    samples = scrape(client)

    assert series(samples, "supportflow_tickets_created_total") == {(("channel", "chat"),): 1}
    assert series(samples, "supportflow_messages_total") == {
        (("author_kind", "customer"),): 1,
        (("author_kind", "agent"),): 2,
    }
    assert series(samples, "supportflow_escalations_total") == {(("reason", "agent"),): 1}
    assert series(samples, "supportflow_ticket_status_changes_total") == {(("status", "resolved"),): 1}
    assert series(samples, "supportflow_csat_ratings_total") == {(("score", "4"),): 1}
    assert series(samples, "supportflow_ai_runs_total") == {
        (("kind", "reply"), ("outcome", "succeeded"), ("provider", "openai")): 1,
        (("kind", "triage"), ("outcome", "failed"), ("provider", "local")): 1,
    }
    assert value(samples, "supportflow_ai_cost_usd_total", kind="reply", provider="openai") == 0.0025
    assert value(samples, "supportflow_ai_cost_usd_total", kind="triage", provider="local") is None  # zero: no field
    reply = {"kind": "reply", "provider": "openai"}
    assert value(samples, "supportflow_ai_run_duration_seconds_bucket", **reply, le="1.0") == 0
    assert value(samples, "supportflow_ai_run_duration_seconds_bucket", **reply, le="2.5") == 1
    assert value(samples, "supportflow_ai_run_duration_seconds_bucket", **reply, le="+Inf") == 1
    assert value(samples, "supportflow_ai_run_duration_seconds_count", **reply) == 1
    assert value(samples, "supportflow_ai_run_duration_seconds_sum", **reply) == 1.2
    triage = {"kind": "triage", "provider": "local"}
    assert value(samples, "supportflow_ai_run_duration_seconds_bucket", **triage, le="0.01") == 1
    assert value(samples, "supportflow_metrics_store_up") == 1


@pytest.mark.django_db
def test_a_rolled_back_change_is_not_counted(client, metrics_store, department, django_capture_on_commit_callbacks):
    def create_then_fail() -> None:
        with transaction.atomic():
            make_ticket(department=department)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        create_then_fail()

    samples = scrape(client)

    assert series(samples, "supportflow_tickets_created_total") == {}
    assert series(samples, "supportflow_messages_total") == {}


@pytest.mark.django_db
def test_escalation_reasons_are_bounded_labels(client, metrics_store, django_capture_on_commit_callbacks):
    department = DepartmentFactory()
    EscalationRule.objects.create(
        name="Metrics test rule", condition="keywords", value="lawyer", reason="Legal threat mentioned (test)"
    )
    by_sla = make_ticket(department=department, priority="urgent")
    Ticket.objects.filter(pk=by_sla.pk).update(first_response_due_at=timezone.now() - dt.timedelta(minutes=1))
    by_rule, unsure, other = (make_ticket(department=department) for _ in range(3))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.ticket_sla_sweep() == 1
        services.ticket_escalate(ticket=by_rule, reason="Legal threat mentioned (test)", actor_kind="ai")
        services.ticket_escalate(ticket=unsure, reason="AI not confident enough to answer", actor_kind="ai")
        services.ticket_escalate(ticket=other, reason="Something nobody configured", actor_kind="system")

    samples = scrape(client)

    assert series(samples, "supportflow_escalations_total") == {
        (("reason", "sla_breach"),): 1,
        (("reason", "keywords"),): 1,
        (("reason", "low_confidence"),): 1,
        (("reason", "other"),): 1,
    }
    assert series(samples, "supportflow_sla_breaches_total") == {(("target", "first_response"),): 1}


@pytest.mark.django_db
def test_events_from_another_process_show_on_this_one(client, metrics_store):
    """A worker process records; the web process serves it: the counters live in Redis, not in memory."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportflow.test_settings",
        "METRICS_KEY_PREFIX": metrics_store,
    }
    code = (
        "import django; django.setup()\n"
        "from supportflow import metrics\n"
        "metrics.record_event('ai_run.finished', run_kind='reply', provider='openai', status='succeeded',"
        " latency_ms=3000, cost='0.5')\n"
        "metrics.record_event('ticket.rated', ticket_id=1, score=5)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr

    samples = scrape(client)

    assert value(samples, "supportflow_ai_cost_usd_total", kind="reply", provider="openai") == 0.5
    assert value(samples, "supportflow_ai_run_duration_seconds_sum", kind="reply", provider="openai") == 3.0
    assert value(samples, "supportflow_csat_ratings_total", score="5") == 1


@pytest.mark.django_db
def test_an_unreachable_metrics_redis_never_fails_the_work(
    client, settings, metrics_store, department, django_capture_on_commit_callbacks, caplog
):
    settings.METRICS_REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there

    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(department=department)
        services.message_create(ticket=ticket, author_kind="customer", body="Still there?")

    assert ticket.messages.count() == 2
    assert "metrics not recorded" in caplog.text
    samples = scrape(client)
    assert value(samples, "supportflow_metrics_store_up") == 0
    assert series(samples, "supportflow_tickets_created_total") == {}
    assert value(samples, "supportflow_tickets_open", status="new") == 1  # the database gauge still works


@pytest.mark.django_db
def test_celery_queue_lengths_are_read_from_the_broker(client, metrics_store):
    app.control.purge()
    try:
        sla_sweep.delay()
        sla_sweep.delay()
        samples = scrape(client)
    finally:
        app.control.purge()

    assert series(samples, "supportflow_celery_queue_length") == {
        (("queue", "ai"),): 0,
        (("queue", "celery"),): 0,
        (("queue", "housekeeping"),): 2,
    }
    assert value(samples, "supportflow_celery_tasks_unacked") is not None


@pytest.mark.django_db
def test_breaker_state_and_open_tickets_are_gauges(client, settings, metrics_store, department):
    settings.LLM_BREAKER_KEY_PREFIX = f"sf:test:metrics:breaker:{uuid.uuid4().hex}:"
    settings.LLM_BREAKER_FAILURES = 2
    make_ticket(department=department)
    make_ticket(department=department)
    assert value(scrape(client), "supportflow_llm_breaker_state", state="closed") == 1

    try:
        breaker.record_failure(probe=False, reason="test")
        assert value(scrape(client), "supportflow_llm_breaker_failures") == 1
        breaker.record_failure(probe=False, reason="test")
        samples = scrape(client)
    finally:
        breaker.reset()

    assert series(samples, "supportflow_llm_breaker_state") == {
        (("state", "closed"),): 0,
        (("state", "open"),): 1,
        (("state", "half_open"),): 0,
    }
    assert series(samples, "supportflow_tickets_open") == {
        (("status", "new"),): 2,
        (("status", "open"),): 0,
        (("status", "pending"),): 0,
    }


def test_cache_gets_hits_and_misses_are_counted():
    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"backend": "redis"}) or 0.0

    before = {name: count(name) for name in ("django_cache_get_total", "django_cache_get_hits_total")}
    misses_before = count("django_cache_get_misses_total")

    cache.set("metrics-test", 0)
    assert cache.get("metrics-test") == 0  # a stored falsy value is a hit
    assert cache.get("metrics-test-missing", "fallback") == "fallback"
    assert cache.get_many(["metrics-test", "metrics-test-missing"]) == {"metrics-test": 0}

    assert count("django_cache_get_total") - before["django_cache_get_total"] == 4
    assert count("django_cache_get_hits_total") - before["django_cache_get_hits_total"] == 2
    assert count("django_cache_get_misses_total") - misses_before == 2


def test_label_values_from_data_are_bounded():
    assert metrics._label("openai") == "openai"
    assert metrics._label('x"} evil{') == "other"
    assert metrics._label("a" * 65) == "other"
    assert metrics._label(None) == "other"


@pytest.mark.django_db
def test_ai_answer_confidence_and_votes_are_counted(
    client, metrics_store, department, django_capture_on_commit_callbacks
):
    """What the AI alerts read (docs/operations.md "Alerts"): the confidence of knowledge-base answers,
    sent or drafted (a clarifying question has none), and the customers' votes, a repeated vote once."""

    def reply(ticket, *, confidence: float, send: bool, kind: str = "answer") -> None:
        services.ai_reply_record(
            ticket=ticket,
            in_reply_to=ticket.messages.get(seq=1),
            body="Open Settings → Sync [1].",
            citations=[],
            confidence=confidence,
            provider="local",
            model="extractive",
            gate={},
            send=send,
            escalation_reason="AI not confident enough to answer",
            kind=kind,
        )

    with django_capture_on_commit_callbacks(execute=True):
        sent, drafted, clarified = (make_ticket(department=department) for _ in range(3))
        reply(sent, confidence=0.8, send=True)
        reply(drafted, confidence=0.25, send=False)
        reply(clarified, confidence=0.0, send=True, kind="clarify")
    answer = sent.messages.get(author_kind="ai")
    with django_capture_on_commit_callbacks(execute=True):
        services.message_record_feedback(message=answer, helpful=False)
        services.message_record_feedback(message=answer, helpful=False)  # the same vote again: no change
        services.message_record_feedback(message=answer, helpful=True)

    samples = scrape(client)

    assert series(samples, "supportflow_ai_answer_confidence_count") == {
        (("outcome", "drafted"),): 1,
        (("outcome", "sent"),): 1,
    }
    assert value(samples, "supportflow_ai_answer_confidence_sum", outcome="sent") == 0.8
    assert value(samples, "supportflow_ai_answer_confidence_sum", outcome="drafted") == 0.25
    assert series(samples, "supportflow_ai_answer_votes_total") == {(("vote", "no"),): 1, (("vote", "yes"),): 1}
