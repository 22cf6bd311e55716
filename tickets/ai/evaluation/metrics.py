"""Detection figures in the two shapes the evaluations report (their JSON keys are part of the figures
people compare across runs, so each keeps its own): one confusion count and P/R/F1 underneath."""

from __future__ import annotations

from collections.abc import Sequence

from supportflow.evaluation import binary_counts, precision_recall_f1, rounded


def detection(gold: Sequence[bool], predicted: Sequence[bool]) -> dict:
    """Triage's shape: precision, recall, F1, how many positives and flags, false-positive rate."""
    tp, fp, fn, tn = binary_counts(gold, predicted)
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    return {
        "precision": rounded(precision),
        "recall": rounded(recall),
        "f1": rounded(f1),
        "positives": tp + fn,
        "flagged": tp + fp,
        "false_positive_rate": rounded(fp / max(1, fp + tn)),
    }


def binary_metrics(labels: Sequence[int], flagged: Sequence[bool]) -> dict:
    """The guard's shape: the same figures with the confusion counts."""
    tp, fp, fn, tn = binary_counts(labels, flagged)
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    return {
        "n": len(labels),
        "positives": tp + fn,
        "precision": rounded(precision),
        "recall": rounded(recall),
        "f1": rounded(f1),
        "fpr": rounded(fp / (fp + tn) if fp + tn else 0.0),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }
