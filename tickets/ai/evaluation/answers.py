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

A clarifying question (``gate["reply"] == "clarify"``) is not an answer: what it held back
(``gate["answer_citations"]``) is what the gate would have sent at a lower threshold, so that is
what "sent at threshold t" is judged on. A social reply (``act``) answers nothing.

The knowledge base's own calibration (``tickets.ai.calibration``) is computed on the loaded namespace
as the indexing beat would, and the report half is also tallied at the threshold it chose.

The dataset's domain is not the demo departments', so the rule "Out of scope" (which reads the demo
triage model) is switched off inside the rolled-back transaction; every other default rule stays on.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.db import transaction

from knowledge import evaluation as kbev
from knowledge.evaluation import EvalQuery
from supportflow.evaluation import percentile, tenths
from tickets import services
from tickets.ai import answer as answering
from tickets.ai import calibration, passages, pipeline, rules
from tickets.models import AIDraft, Customer, EscalationRule, KnowledgeCalibration

FEATURES = answering.FEATURES
L2_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MISS_PRIORS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
WRONG_CAP = 0.02  # the limit: wrong auto-answers at most 2 % of all questions


@dataclass
class Replay:
    query: EvalQuery
    outcome: str
    confidence: float
    features: dict
    blocked_by_rules: list[str]
    cited: list[str]
    reply: str = "answer"
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
            rules.switch_off(EscalationRule.Condition.OUT_OF_SCOPE)
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
            kind = gate.get("reply", "answer")
            if kind == "clarify":
                citations = gate.get("answer_citations") or []
            elif kind == "act":
                citations = []
            else:
                citations = draft.citations if draft else []
            out.append(
                Replay(
                    query=q,
                    outcome=outcome,
                    confidence=draft.confidence if draft else 0.0,
                    features=gate.get("evidence", {}),
                    blocked_by_rules=triggers,
                    reasons=[t.get("reason", "") for t in fired],
                    cited=[pk_to_external.get(c.get("article_id"), "?") for c in citations],
                    reply=kind,
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


def _fit_rows(replays: Sequence[Replay]) -> list[Replay]:
    """Only answers the rules would let through count: the gate decides among those."""
    return [
        r for r in replays if r.features and r.cited and not r.blocked_by_rules and r.verdict_if_sent != "unverifiable"
    ]


def logistic(x: np.ndarray, y: np.ndarray, *, l2: float, steps: int = 3000) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by gradient descent (deterministic; bias not penalised)."""
    w, b, lr = np.zeros(x.shape[1]), 0.0, 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) / len(y) + l2 * w / len(y))
        b -= lr * float(np.mean(p - y))
    return w, b


def _matrix(rows: Sequence[Replay]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[r.features.get(f, 0.0) for f in FEATURES] for r in rows], dtype=np.float64)
    return x, np.array([1.0 if r.correct_if_sent else 0.0 for r in rows])


def _cv_losses(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, folds: int = 5) -> dict:
    fold_of = {g: i % folds for i, g in enumerate(sorted(set(groups)))}
    fold = np.array([fold_of[g] for g in groups])
    losses = {}
    for l2 in L2_GRID:
        total = 0.0
        for k in range(folds):
            train, test = fold != k, fold == k
            if not test.any() or len(set(y[train])) < 2:
                continue
            w, b = logistic(x[train], y[train], l2=l2)
            p = np.clip(1 / (1 + np.exp(-(x[test] @ w + b))), 1e-6, 1 - 1e-6)
            total -= float(np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
        losses[l2] = round(total / len(y), 4)
    return losses


def cross_validate_l2(rows: Sequence[Replay], *, folds: int = 5) -> dict:
    """Held-out log-loss of each ``L2_GRID`` value, folds by FAQ group (no FAQ in two folds)."""
    return _cv_losses(*_matrix(rows), [r.query.group or r.query.text for r in rows], folds=folds)


def fit_pooled(paths: Sequence[str]) -> dict:
    """The shipped weights: the tuning parts' rows of several datasets (``--features-out``) pooled, the
    L2 strength by grouped cross-validation (folds by dataset and FAQ), then one fit on all rows."""
    lines = [line for path in paths for line in Path(path).read_text(encoding="utf-8").splitlines()]
    rows = [json.loads(line) for line in lines if line.strip()]
    x = np.array([[row.get(f, 0.0) for f in FEATURES] for row in rows], dtype=np.float64)
    y = np.array([1.0 if row["correct"] else 0.0 for row in rows])
    losses = _cv_losses(x, y, [f"{row['dataset']}|{row['group']}" for row in rows])
    l2 = min(losses, key=losses.get)
    w, b = logistic(x, y, l2=l2)
    weights = {"bias": round(b, 3), **{f: round(float(v), 3) for f, v in zip(FEATURES, w, strict=True)}}
    return {"rows": len(rows), "by_dataset": dict(Counter(r["dataset"] for r in rows)), "cv_log_loss_by_l2": losses,
            "l2": l2, "weights": weights}  # fmt: skip


def fit_weights(replays: Sequence[Replay], *, l2: float | None = None) -> dict:
    """Logistic regression of "the first citation is right" on the evidence features; ``l2`` by grouped
    cross-validation on these replays (the tuning part) when not given."""
    rows = _fit_rows(replays)
    if len(rows) < 10 or len({r.correct_if_sent for r in rows}) < 2:
        return dict(answering.CONFIDENCE_WEIGHTS)
    if l2 is None:
        losses = cross_validate_l2(rows)
        l2 = min(losses, key=losses.get)
    w, b = logistic(*_matrix(rows), l2=l2)
    return {"bias": round(b, 3), **{f: round(float(v), 3) for f, v in zip(FEATURES, w, strict=True)}}


def feature_rows(replays: Sequence[Replay], dataset: str) -> list[dict]:
    """The tuning part's fit rows, to pool datasets for the shipped weights (docs/eval-answers.md)."""
    return [
        {"dataset": dataset, "group": r.query.group or r.query.text, "correct": r.correct_if_sent, **r.features}
        for r in _fit_rows(replays)
    ]


def stage_latency(replays: Sequence[Replay]) -> dict:
    stages = sorted({k for r in replays for k in r.stages_ms})
    out = {s: {"p50": percentile([r.stages_ms.get(s, 0) for r in replays] or [0], 50)} for s in stages}
    totals = [r.total_ms for r in replays] or [0.0]
    out["total_ms"] = {"p50": round(percentile(totals, 50), 1), "p95": round(percentile(totals, 95), 1)}
    return out


def run(
    data: str,
    *,
    limit: int | None,
    namespace: str | None,
    keep: bool,
    fit: bool,
    log: Callable[[str], None],
    verbose: bool = True,
    features_out: str | None = None,
    dump: str | None = None,
) -> dict:
    """Tune the gate's threshold on the development part, report on the test part (or, without a test
    file, on the other half by FAQ). ``log`` gets what is being done, and progress counts if ``verbose``.
    Raises ``DatasetError``."""
    dataset = kbev.load_dataset(data)
    namespace = namespace or f"eval-answers-{dataset.name}"[:50]
    kbev.check_namespace(namespace)
    if dataset.test is not None:
        tune, report = kbev.sample(dataset.dev, limit), kbev.sample(dataset.test, limit)
        protocol = f"tuned on {dataset.dev_file}, reported on {dataset.test_file}"
    else:
        tune, report = kbev.split_by_group(kbev.sample(dataset.dev, limit))
        protocol = f"{dataset.dev_file} split in two halves by FAQ: tuned on one, reported on the other"

    counts = log if verbose else None
    started = time.perf_counter()
    log(f"Loading {len(dataset.articles)} articles into {namespace!r}…")
    pk_to_external = kbev.load_namespace(
        namespace, dataset.articles, progress=tenths(counts, "indexed", len(dataset.articles))
    )
    try:
        kbev.warm_up(namespace)
        log("Scanning the passages with the injection guard (as the beat sweep does)…")
        passages.kb_passages_scan_pending(namespace=namespace, limit=None)
        log("Calibrating the gate on the knowledge base (titles and headings as questions)…")
        probes = calibration.measure(namespace)
        calibrated = calibration.kb_calibrate(namespace=namespace, force=True, probes=probes)
        tune_runs = replay(
            tune, namespace=namespace, pk_to_external=pk_to_external, progress=tenths(counts, "tune", len(tune))
        )
        report_runs = replay(
            report, namespace=namespace, pk_to_external=pk_to_external, progress=tenths(counts, "report", len(report))
        )
    finally:
        KnowledgeCalibration.objects.filter(namespace=namespace).delete()
        if not keep:
            kbev.wipe_namespace(namespace)

    shipped = dict(answering.CONFIDENCE_WEIGHTS)
    chosen = best_threshold(tune_runs)
    result = {
        "evaluation": "answers",
        "dataset": dataset.name,
        "protocol": protocol,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "weights": shipped,
        "threshold_chosen_on_tuning_part": chosen["threshold"],
        "tuning": chosen,
        "report": tally(report_runs, chosen["threshold"]),
        "report_at_default_threshold_0_6": tally(report_runs, 0.6),
        "calibration": {
            "threshold": calibrated.threshold if calibrated else None,
            "miss_prior": calibration.MISS_PRIOR,
            "confused_share": calibrated.confused_share if calibrated else None,
            "twin_share": calibrated.twin_share if calibrated else None,
            "pseudo_questions": calibrated.pseudo_questions if calibrated else 0,
            "figures": calibrated.figures if calibrated else {},
            "tuning": tally(tune_runs, calibrated.threshold) if calibrated else None,
            "report": tally(report_runs, calibrated.threshold) if calibrated else None,
            # the prior is chosen on tuning parts only: the threshold each prior gives, tallied there
            "tuning_by_miss_prior": {
                str(m): tally(tune_runs, calibration.choose_threshold(probes, miss_prior=m)) for m in MISS_PRIORS
            },
        },
        "replies": {k: sum(1 for r in report_runs if r.reply == k) for k in ("answer", "clarify", "act")},
        "blocked_by_rules": round(sum(1 for r in report_runs if r.blocked_by_rules) / max(1, len(report_runs)), 4),
        "retrieval_top1_correct": round(sum(1 for r in report_runs if r.correct_if_sent) / max(1, len(report_runs)), 4),
        "latency_ms": stage_latency(report_runs),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if dump:  # everything a reader needs to recheck the figures offline (choose on "tune" only)
        rows = {
            part: [
                {"confidence": r.confidence, "verdict": r.verdict_if_sent, "blocked": bool(r.blocked_by_rules),
                 "cited": bool(r.cited), **r.features}
                for r in runs
            ]
            for part, runs in (("tune", tune_runs), ("report", report_runs))
        }  # fmt: skip
        rows["probes"] = [asdict(p) for p in probes]
        Path(dump).write_text(json.dumps(rows), encoding="utf-8")
    if features_out:
        with open(features_out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in feature_rows(tune_runs, dataset.name))
    if fit:
        rows = _fit_rows(tune_runs)
        fitted = fit_weights(tune_runs)
        fitted_choice = best_threshold(tune_runs, fitted)
        result["fitted"] = {
            "weights": fitted,
            "cv_log_loss_by_l2": cross_validate_l2(rows) if len(rows) >= 10 else {},
            "threshold": fitted_choice["threshold"],
            "tuning": fitted_choice,
            "report": tally(report_runs, fitted_choice["threshold"], fitted),
        }
    rules_hit: dict[str, int] = {}
    examples: dict[str, list[dict]] = {}
    for r in report_runs:
        for rule, reason in zip(r.blocked_by_rules, r.reasons or [""] * len(r.blocked_by_rules), strict=False):
            rules_hit[rule] = rules_hit.get(rule, 0) + 1
            if len(examples.setdefault(rule, [])) < 3:
                examples[rule].append({"question": r.query.text[:160], "reason": reason[:200]})
    result["rules_that_blocked"] = rules_hit
    result["rules_that_blocked_examples"] = examples
    return result


def summary_lines(result: dict) -> list[str]:
    rep = result["report"]
    lines = [
        f"{result['dataset']}: {result['protocol']}",
        f"  threshold {result['threshold_chosen_on_tuning_part']:.3f} (chosen on the tuning part: wrong ≤ "
        f"{WRONG_CAP:.0%})\n"
        f"  reported on {rep['questions']} questions: auto-correct {rep['auto_correct']:.1%}, "
        f"auto-wrong {rep['auto_wrong']:.1%}, escalated {rep['escalated']:.1%}",
    ]
    cal = result.get("calibration") or {}
    if cal.get("report"):
        c = cal["report"]
        lines.append(
            f"  calibrated on the knowledge base: threshold {cal['threshold']:.3f}, "
            f"auto-correct {c['auto_correct']:.1%}, auto-wrong {c['auto_wrong']:.1%}"
        )
    if "fitted" in result:
        f = result["fitted"]["report"]
        lines.append(
            f"  with fitted weights {result['fitted']['weights']}: threshold {result['fitted']['threshold']:.3f}, "
            f"auto-correct {f['auto_correct']:.1%}, auto-wrong {f['auto_wrong']:.1%}"
        )
    return lines
