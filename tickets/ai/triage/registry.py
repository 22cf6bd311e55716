"""The triage model registry: a retrain goes live only when it is not worse than the active version.

Every retrain is stored as a *candidate* and scored, with the active version, on the same examples: the
seed set (its true labels; both versions were trained on it, so this measures fit — a retrain on broken
labels fails here) plus a held-back slice of the agents' corrections that no version is trained on (a
hash of the ticket id picks them, so the same tickets stay held out across retrains; the slice exists once
``TRIAGE_HOLDOUT_MIN_CORRECTIONS`` tickets were corrected, so a handful of early corrections all teach).
The candidate becomes *active* (the old one *retired*) unless one head's macro-F1 is lower than the
active's by more than ``TRIAGE_PROMOTION_MARGIN``; then it is *rejected* and the active one stays.
Both figures and the reason are stored on the candidate.

The activation itself, and the managers' promote and rollback (console: ``tickets/admin/ai.py``, audited
in the admin's log), are ticket services (``tickets/services/triage_models.py``). Workers load the new
active version at their next prediction: an activation bumps a generation key in the cache that each
process compares on every prediction (``local.py``), besides the 30 s database re-check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.utils import timezone

from knowledge import embeddings
from tickets import services
from tickets.ai.triage import local
from tickets.ai.triage.model import LocalModel, accuracy_and_macro_f1, model_from_bytes, one_blas_thread
from tickets.models import TriageModel

HOLDOUT_SALT = "triage-holdout/v1"  # changing it moves every ticket to a new side of the split


# --- the held-out examples ------------------------------------------------------------------------


def is_held_out(ticket_id: int) -> bool:
    """Whether a corrected ticket is kept out of training: a stable hash, the same in every process."""
    digest = hashlib.sha256(f"{HOLDOUT_SALT}:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < settings.TRIAGE_HOLDOUT_PERCENT


def split(examples: Sequence[local.Example]) -> tuple[list[local.Example], list[local.Example]]:
    """(training examples, held-out corrections). Nothing is held out below the minimum of corrections."""
    corrections = [e for e in examples if e.source == "correction"]
    if len(corrections) < settings.TRIAGE_HOLDOUT_MIN_CORRECTIONS:
        return list(examples), []
    held = [e for e in corrections if e.ticket_id is not None and is_held_out(e.ticket_id)]
    held_ids = {e.ticket_id for e in held}
    return [e for e in examples if e.source != "correction" or e.ticket_id not in held_ids], held


def evaluation_examples(examples: Sequence[local.Example], held_out: Sequence[local.Example]) -> list[local.Example]:
    """The seed examples with a category, department or priority label (as corrected texts leave them),
    plus the held-out corrections."""
    seed = [e for e in examples if e.source == "seed" and any(e.label(name) for name in local.FIELDS)]
    return seed + list(held_out)


def evaluate(model: LocalModel, examples: Sequence[local.Example], vectors: np.ndarray) -> dict:
    """Per head (category, department, priority): accuracy and macro-F1 as the product predicts it."""
    with one_blas_thread():
        proba = model.proba(vectors) if len(examples) else {}
    figures: dict = {
        "examples": {
            "seed": sum(e.source == "seed" for e in examples),
            "held_out_corrections": sum(e.source == "correction" for e in examples),
        }
    }
    for name in local.FIELDS:
        rows = [i for i, e in enumerate(examples) if e.label(name)]
        labels = model.heads[name].labels
        predicted = [labels[j] for j in proba[name][rows].argmax(axis=1)] if rows else []
        accuracy, macro_f1 = accuracy_and_macro_f1([examples[i].label(name) for i in rows], predicted)
        figures[name] = {"accuracy": round(accuracy, 4), "macro_f1": round(macro_f1, 4), "n": len(rows)}
    return figures


def verdict(candidate: dict, active: dict, *, margin: float) -> tuple[bool, str]:
    """Promote unless a head's macro-F1 falls below the active's by more than ``margin``."""
    worse = [
        f"{name} macro-F1 {candidate[name]['macro_f1']:.3f} < {active[name]['macro_f1']:.3f} − {margin:g}"
        for name in local.FIELDS
        if candidate[name]["n"] and candidate[name]["macro_f1"] < active[name]["macro_f1"] - margin
    ]
    if worse:
        return False, "Rejected: worse than the active version on held-out examples (" + "; ".join(worse) + ")."
    return True, f"Promoted: no head's held-out macro-F1 is more than {margin:g} below the active version's."


# --- the gate a retrain goes through --------------------------------------------------------------


def triage_model_gate(*, row: TriageModel, model: LocalModel, examples: Sequence[local.Example]) -> TriageModel:
    """Score a freshly stored candidate and the active version on ``examples``; promote or reject it.

    Runs outside any transaction (embedding a few held-out texts); the promotion itself is a short
    compare-and-set: if another version became active while this one was scored, it stays a candidate."""
    vectors = local.example_vectors(examples)
    figures = evaluate(model, examples, vectors)
    margin = settings.TRIAGE_PROMOTION_MARGIN
    active = TriageModel.objects.filter(is_active=True).first()
    evaluation: dict = {"candidate": figures, "margin": margin, "active_version": active.version if active else None}
    if active is None:
        promote, reason = True, "Promoted: no version was active."
    elif active.embedding_model != embeddings.model_name():
        promote, reason = True, f"Promoted: the active v{active.version} was trained on other embeddings."
    else:
        previous = model_from_bytes(active.weights, active.labels, version=active.version, metrics=active.metrics)
        evaluation["active"] = evaluate(previous, examples, vectors)
        promote, reason = verdict(figures, evaluation["active"], margin=margin)
    row.evaluation, row.evaluated_at = evaluation, timezone.now()
    if not promote:
        row.status, row.reason = TriageModel.Status.REJECTED, reason
        row.save(update_fields=["evaluation", "evaluated_at", "status", "reason"])
        return row
    row.save(update_fields=["evaluation", "evaluated_at"])
    try:
        row = services.triage_model_activate(row=row, reason=reason, expected_active=active)
    except services.TicketRuleError as exc:  # another version went live while this one was scored
        TriageModel.objects.filter(pk=row.pk).update(reason=str(exc))
        row.refresh_from_db()
        return row
    local.clear_cache()  # this process at once; the others on commit (the generation key)
    return row
