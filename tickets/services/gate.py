"""Writes of the confidence gate's calibration (computed by the AI wing, ``tickets.ai.calibration``):
a knowledge base's calibration row, and a queue's threshold from its customers' votes."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tickets.models import Department, KnowledgeCalibration


@transaction.atomic
def knowledge_calibration_store(
    *,
    namespace: str,
    threshold: float,
    fingerprint: str,
    articles: int,
    pseudo_questions: int,
    confused_share: float,
    twin_share: float,
    wrong_cap: float,
    figures: dict,
) -> KnowledgeCalibration:
    """Create or replace the namespace's calibration (one row per namespace: race-safe by its unique key)."""
    row, _ = KnowledgeCalibration.objects.update_or_create(
        namespace=namespace,
        defaults={
            "threshold": round(threshold, 4),
            "fingerprint": fingerprint,
            "articles": articles,
            "pseudo_questions": pseudo_questions,
            "confused_share": round(confused_share, 4),
            "twin_share": round(twin_share, 4),
            "wrong_cap": wrong_cap,
            "figures": figures,
            "computed_at": timezone.now(),
        },
    )
    return row


def department_feedback_threshold_store(*, department_id: int, threshold: float | None, figures: dict) -> None:
    """One row, one ``UPDATE``: the threshold the queue's "No" votes call for (null: they call for none)."""
    Department.objects.filter(pk=department_id).update(
        ai_feedback_threshold=None if threshold is None else round(threshold, 4),
        ai_feedback_figures={**figures, "computed_at": timezone.now().isoformat(timespec="seconds")},
    )
