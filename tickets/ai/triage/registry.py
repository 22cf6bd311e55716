"""The triage model registry: a retrain goes live only when it is not worse than the active version.

Every retrain is stored as a *candidate* and scored, with the active version, on the same examples: the
seed set (its true labels; both versions were trained on it, so this measures fit — a retrain on broken
labels fails here) plus a held-back slice of the agents' corrections that no version is trained on (a
hash of the ticket id picks them, so the same tickets stay held out across retrains; the slice exists once
``TRIAGE_HOLDOUT_MIN_CORRECTIONS`` tickets were corrected, so a handful of early corrections all teach).
The candidate becomes *active* (the old one *retired*) unless one head's macro-F1 is lower than the
active's by more than ``TRIAGE_PROMOTION_MARGIN``; then it is *rejected* and the active one stays.
Both figures and the reason are stored on the candidate.

Managers promote any stored version or roll back to the previously active one from the console
(``tickets/admin/ai.py``); each is recorded in the admin's log (who, when, what). Workers load the new
active version at their next prediction: a promotion bumps a generation key in the cache that each
process compares on every prediction (``local.py``), besides the 30 s database re-check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from knowledge import embeddings
from tickets.ai.triage import local
from tickets.ai.triage.model import LocalModel, accuracy_and_macro_f1, model_from_bytes, one_blas_thread
from tickets.models import TriageModel

HOLDOUT_SALT = "triage-holdout/v1"  # changing it moves every ticket to a new side of the split


class RegistryError(Exception):
    """A promotion or rollback that cannot be done; the message says why, for the manager."""


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
        return _activate(row, reason=reason, expected_active=active)
    except RegistryError as exc:
        TriageModel.objects.filter(pk=row.pk).update(reason=str(exc))
        row.refresh_from_db()
        return row


@transaction.atomic
def _activate(
    row: TriageModel, *, reason: str, expected_active: TriageModel | None, previous_status: str = "retired"
) -> TriageModel:
    """Make ``row`` the active version, if ``expected_active`` still is; the old one gets ``previous_status``."""
    current = TriageModel.objects.select_for_update().filter(is_active=True).first()
    if (current and current.pk) != (expected_active and expected_active.pk):
        raise RegistryError(gettext("Not promoted: the active version changed meanwhile; try again."))
    now = timezone.now()
    if current is not None:
        current.is_active, current.status = False, previous_status
        current.reason = f"{'Rolled back' if previous_status == TriageModel.Status.REJECTED else 'Retired'}: " + (
            f"v{row.version} is active since {now:%Y-%m-%d %H:%M} UTC."
        )
        current.save(update_fields=["is_active", "status", "reason"])
    row.is_active, row.status, row.reason, row.activated_at = True, TriageModel.Status.ACTIVE, reason, now
    row.save(update_fields=["is_active", "status", "reason", "activated_at"])
    local.clear_cache()  # this process at once (also where tests run without commits); others on commit
    transaction.on_commit(local.announce_active_change)
    return row


# --- a manager's actions --------------------------------------------------------------------------


def _audit(user: AbstractBaseUser, rows: Sequence[TriageModel], message: str) -> None:
    LogEntry.objects.log_actions(user_id=user.pk, queryset=rows, action_flag=CHANGE, change_message=message)


def triage_model_promote(*, user: AbstractBaseUser, version_id: int) -> TriageModel:
    """Make a stored version active by hand (a candidate, a rejected or a retired one). The caller checked
    that ``user`` is a manager."""
    row = TriageModel.objects.filter(pk=version_id).first()
    if row is None:
        raise RegistryError(gettext("No such triage model version."))
    if row.is_active:
        raise RegistryError(gettext("v%(version)s is already active.") % {"version": row.version})
    if row.embedding_model != embeddings.model_name():
        raise RegistryError(
            gettext("v%(version)s was trained on %(theirs)s embeddings, not %(ours)s: retrain instead.")
            % {"version": row.version, "theirs": row.embedding_model, "ours": embeddings.model_name()}
        )
    active = TriageModel.objects.filter(is_active=True).first()
    with transaction.atomic():
        row = _activate(row, reason=f"Promoted by {user} (was {row.status}).", expected_active=active)
        _audit(user, [row], f"Promoted v{row.version}" + (f", replacing v{active.version}." if active else "."))
    return row


def triage_model_rollback(*, user: AbstractBaseUser) -> TriageModel:
    """Go back to the version that was active before the current one (the latest retired version with the
    same embeddings); the current one is marked rejected, so a second rollback goes one further back."""
    active = TriageModel.objects.filter(is_active=True).first()
    if active is None:
        raise RegistryError(gettext("No version is active: nothing to roll back."))
    previous = (
        TriageModel.objects.filter(
            status=TriageModel.Status.RETIRED, activated_at__isnull=False, embedding_model=embeddings.model_name()
        )
        .exclude(pk=active.pk)
        .order_by("-activated_at", "-version")
        .first()
    )
    if previous is None:
        raise RegistryError(
            gettext("No earlier version to roll back to from v%(version)s.") % {"version": active.version}
        )
    with transaction.atomic():
        row = _activate(
            previous,
            reason=f"Rolled back to by {user} from v{active.version}.",
            expected_active=active,
            previous_status=TriageModel.Status.REJECTED,
        )
        _audit(user, [row, active], f"Rolled back from v{active.version} to v{row.version}.")
    return row
