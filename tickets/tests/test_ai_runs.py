from __future__ import annotations

from decimal import Decimal

import pytest

from tickets.ai import runs
from tickets.models import AIRun


@pytest.mark.django_db
def test_a_rerun_with_the_same_key_is_a_no_op(ticket):
    message = ticket.messages.get(seq=1)
    run, created = runs.ai_run_begin(
        key=f"triage:message:{message.pk}", kind="triage", provider="local", ticket=ticket, message=message
    )
    again, created_again = runs.ai_run_begin(
        key=f"triage:message:{message.pk}", kind="triage", provider="local", ticket=ticket, message=message
    )
    assert (created, created_again) == (True, False)
    assert again.pk == run.pk
    assert AIRun.objects.count() == 1


@pytest.mark.django_db
def test_finishing_records_usage_once_and_adds_cost_to_the_ticket(ticket):
    run, _ = runs.ai_run_begin(key="reply:1", kind="reply", provider="openai", ticket=ticket, model="m")

    runs.ai_run_finish(run=run, succeeded=True, tokens_in=900, tokens_out=120, cost="0.0123", latency_ms=850)
    runs.ai_run_finish(run=run, succeeded=True, tokens_in=1, tokens_out=1, cost="5", latency_ms=1)

    run.refresh_from_db()
    ticket.refresh_from_db()
    assert (run.status, run.tokens_in, run.tokens_out, run.cost, run.latency_ms) == (
        "succeeded",
        900,
        120,
        Decimal("0.012300"),
        850,
    )
    assert ticket.ai_cost == Decimal("0.012300")


@pytest.mark.django_db
def test_a_failed_run_keeps_its_error(ticket):
    run, _ = runs.ai_run_begin(key="reply:2", kind="reply", provider="openai", ticket=ticket)
    runs.ai_run_finish(run=run, succeeded=False, error="timeout after 10s")
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "timeout after 10s")
    assert run.finished_at is not None
