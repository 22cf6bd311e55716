"""Answering, replayed end to end through the pipeline on a public FAQ dataset (``manage.py eval_answers``).

Each question becomes a real ticket whose first message goes through ``pipeline.process_message``
(guard, triage, retrieval, answer, rules, gate) against the dataset loaded into its own namespace;
the work happens in a transaction that is rolled back, so nothing is left behind. The stored
decision (``AIDraft``: confidence, evidence, triggers, citations) says what the gate did and could do
at any other threshold:

- auto-answered correctly: sent, and its first citation is a gold article of the question (for a
  hard negative whose text is also another pair's paraphrase, that pair's FAQ);
- auto-answered wrongly: sent with another article, or a hard negative sent with the FAQ its pair
  rules out; a hard negative answered from a third article cannot be judged and is counted as wrong
  for the 2 % cap (and reported on its own as ``auto_unverifiable``);
- escalated: not sent (a rule fired, or confidence below the threshold).

The dataset's domain is not the demo departments', so the rule "Out of scope" (which reads the demo
triage model) is switched off inside the rolled-back transaction; every other default rule stays on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from knowledge.evaluation import EvalQuery, percentile
from tickets import services
from tickets.ai import answer as answering
from tickets.ai import pipeline
from tickets.models import AIDraft, Customer, EscalationRule

FEATURES = ("similarity", "unit", "agree", "margin")
WRONG_CAP = 0.02  # the limit: wrong auto-answers at most 2 % of all questions


@dataclass
class Replay:
    query: EvalQuery
    outcome: str
    confidence: float
    features: dict
    blocked_by_rules: list[str]
    cited: list[str]
    stages_ms: dict = field(default_factory=dict)
    total_ms: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict_if_sent(self) -> str:
        """``correct``, ``wrong`` or ``unverifiable`` for the answer this question got, judged by its
        first citation: a positive must cite its gold article; a hard negative must not cite the FAQ
        its pair rules out, and when the same text is also a positive pair's question (its right FAQ
        is known) must cite that one. A hard negative answered from some other article cannot be judged."""
        if not self.cited:
            return "wrong"
        top, q = self.cited[0], self.query
        if q.gold:
            return "correct" if top in q.gold else "wrong"
        if top in q.forbidden:
            return "wrong"
        if q.known_gold:
            return "correct" if top in q.known_gold else "wrong"
        return "unverifiable"

    @property
    def correct_if_sent(self) -> bool:
        return self.verdict_if_sent == "correct"

    def sent_at(self, threshold: float, weights: dict | None = None) -> bool:
        if self.blocked_by_rules or not self.cited:
            return False
        confidence = self.confidence if weights is None else answering.evidence_confidence(self.features, weights)
        return confidence >= threshold


def replay(queries: Sequence[EvalQuery], *, namespace: str, pk_to_external: dict[int, str], progress=None):
    customer = Customer(name="Evaluation")
    out = []
    for done, q in enumerate(queries, start=1):
        with transaction.atomic():
            EscalationRule.objects.filter(condition=EscalationRule.Condition.OUT_OF_SCOPE).update(is_active=False)
            customer.save()
            ticket = services.ticket_create(customer=customer, subject=q.text[:60] or "?", body=q.text)
            message = ticket.messages.get(seq=1)
            started = time.perf_counter()
            outcome = pipeline.process_message(message_id=message.pk, namespace=namespace)
            elapsed = (time.perf_counter() - started) * 1000
            draft = AIDraft.objects.filter(in_reply_to=message).first()
            gate = draft.gate if draft else {}
            fired = [t for t in gate.get("triggers", []) if t["rule"] != "Low confidence"]
            triggers = [t["rule"] for t in fired]
            out.append(
                Replay(
                    query=q,
                    outcome=outcome,
                    confidence=draft.confidence if draft else 0.0,
                    features=gate.get("evidence", {}),
                    blocked_by_rules=triggers,
                    reasons=[t.get("reason", "") for t in fired],
                    cited=[pk_to_external.get(c.get("article_id"), "?") for c in (draft.citations if draft else [])],
                    stages_ms=gate.get("stages_ms", {}),
                    total_ms=elapsed,
                )
            )
            transaction.set_rollback(True)
            customer.pk = None
        if progress is not None:
            progress(done)
    return out


def tally(replays: Sequence[Replay], threshold: float, weights: dict | None = None) -> dict:
    """Shares of all questions. ``auto_wrong`` counts unverifiable answers too (the cap is judged
    conservatively); ``auto_unverifiable`` says how many of them could not be judged either way."""
    n = len(replays) or 1
    sent = [r for r in replays if r.sent_at(threshold, weights)]
    correct = sum(1 for r in sent if r.verdict_if_sent == "correct")
    unverifiable = sum(1 for r in sent if r.verdict_if_sent == "unverifiable")
    wrong = len(sent) - correct
    return {
        "threshold": round(threshold, 4),
        "questions": len(replays),
        "auto_correct": round(correct / n, 4),
        "auto_wrong": round(wrong / n, 4),
        "auto_unverifiable": round(unverifiable / n, 4),
        "escalated": round((len(replays) - len(sent)) / n, 4),
        "automation_rate": round(len(sent) / n, 4),
    }


def best_threshold(replays: Sequence[Replay], weights: dict | None = None, cap: float = WRONG_CAP) -> dict:
    """The lowest threshold (most automation) whose wrong auto-answers stay within ``cap``."""
    values = sorted(
        {1.0}
        | {
            (r.confidence if weights is None else answering.evidence_confidence(r.features, weights))
            for r in replays
            if r.features
        }
    )
    for value in values:
        row = tally(replays, value, weights)
        if row["auto_wrong"] <= cap:
            return row
    return tally(replays, 1.01, weights)


def fit_weights(replays: Sequence[Replay], *, l2: float = 1.0, steps: int = 3000) -> dict:
    """Logistic regression of "the first citation is right" on the evidence features (gradient descent,
    deterministic). Only answers the rules would let through count: the gate decides among those."""
    rows = [
        r for r in replays if r.features and r.cited and not r.blocked_by_rules and r.verdict_if_sent != "unverifiable"
    ]
    if len(rows) < 10:
        return dict(answering.CONFIDENCE_WEIGHTS)
    x = np.array([[r.features.get(f, 0.0) for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.array([1.0 if r.correct_if_sent else 0.0 for r in rows])
    w = np.zeros(len(FEATURES))
    b = 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        grad_w = x.T @ (p - y) / len(y) + l2 * w / len(y)
        grad_b = float(np.mean(p - y))
        w -= lr * grad_w
        b -= lr * grad_b
    return {"bias": round(b, 3), **{f: round(float(v), 3) for f, v in zip(FEATURES, w, strict=True)}}


def split_half(queries: Sequence[EvalQuery]) -> tuple[list[EvalQuery], list[EvalQuery]]:
    """Two halves by the question's group (its FAQ / gold thread), so no FAQ is in both."""
    halves: tuple[list[EvalQuery], list[EvalQuery]] = ([], [])
    for q in queries:
        key = q.group or "|".join(sorted(q.gold | q.forbidden))
        halves[hashlib.sha256(key.encode()).digest()[0] % 2].append(q)
    return halves


def stage_latency(replays: Sequence[Replay]) -> dict:
    stages = sorted({k for r in replays for k in r.stages_ms})
    out = {s: {"p50": percentile([r.stages_ms.get(s, 0) for r in replays] or [0], 50)} for s in stages}
    totals = [r.total_ms for r in replays] or [0.0]
    out["total_ms"] = {"p50": round(percentile(totals, 50), 1), "p95": round(percentile(totals, 95), 1)}
    return out
