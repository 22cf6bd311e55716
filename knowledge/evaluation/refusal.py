"""Answer or refuse: a confidence threshold on the top hit, chosen on the development pairs and scored on
the reported ones, with the COVID set's hard negatives (pairs whose FAQ is the wrong answer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.evaluation.datasets import Dataset, EvalQuery, split_by_group
from knowledge.evaluation.metrics import first_relevant
from knowledge.evaluation.retrieval import EVAL_MODES, Result

# The system's answer is the top article of a mode; its confidence is one number of that hit.
CONFIDENCES = {
    "hybrid_cosine": (
        "hybrid",
        "top_similarity",
        "hybrid top article; confidence = its best chunk's cosine similarity",
    ),
    "hybrid_rrf": ("hybrid", "top_score", "hybrid top article; confidence = its RRF score (max 2/61 ≈ 0.0328)"),
    "vector_cosine": ("vector", "top_similarity", "vector top article; confidence = its cosine similarity"),
}
PRINTED_THRESHOLDS = {
    "hybrid_cosine": (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9),
    "vector_cosine": (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9),
    "hybrid_rrf": (0.0, 0.0164, 0.02, 0.025, 0.03, 0.031, 0.032, 0.0322, 0.0325, 0.0328),
}


def confidence(result: Result, attribute: str) -> float:
    value = getattr(result, attribute)
    return float(value) if value is not None else 0.0  # no vector evidence at all: least confident


@dataclass
class Outcome:
    """Counts at one threshold. Positives: answered right / answered wrong / refused. Hard negatives:
    refused / answered with the FAQ the pair says is wrong / answered with some other FAQ, which for
    negatives that are also a positive pair's question is judged right or wrong (else unjudged)."""

    threshold: float
    positives: int = 0
    pos_correct: int = 0
    pos_wrong: int = 0
    pos_refused: int = 0
    negatives: int = 0
    neg_refused: int = 0
    neg_wrong: int = 0
    neg_other: int = 0
    neg_other_right: int = 0
    neg_other_wrong: int = 0

    @property
    def utility(self) -> float:
        """Selection rule: (right answers − wrong answers) / all questions, where right = a positive
        answered with its FAQ and wrong = a positive answered with another FAQ or a hard negative
        answered with the pair's FAQ. A wrong answer costs what a right one earns; refusing
        (escalating to a person) costs nothing, so it answers when right is likelier than wrong."""
        return (self.pos_correct - self.pos_wrong - self.neg_wrong) / max(1, self.positives + self.negatives)

    def as_dict(self) -> dict:
        p, n = max(1, self.positives), max(1, self.negatives)
        return {
            "threshold": round(self.threshold, 4),
            "positives": self.positives,
            "pos_answered_correct": round(self.pos_correct / p, 4),
            "pos_answered_wrong": round(self.pos_wrong / p, 4),
            "pos_refused": round(self.pos_refused / p, 4),
            "negatives": self.negatives,
            "neg_refused": round(self.neg_refused / n, 4),
            "neg_answered_wrong_faq": round(self.neg_wrong / n, 4),
            "neg_answered_other_faq": round(self.neg_other / n, 4),
            "neg_other_judged_right": self.neg_other_right,
            "neg_other_judged_wrong": self.neg_other_wrong,
            "neg_other_unjudged": self.neg_other - self.neg_other_right - self.neg_other_wrong,
        }


def outcome(queries: Sequence[EvalQuery], results: dict[str, Result], attribute: str, threshold: float) -> Outcome:
    out = Outcome(threshold=threshold)
    for q in queries:
        result = results[q.text]
        answered = bool(result.ranking) and confidence(result, attribute) >= threshold
        top = result.ranking[0] if result.ranking else None
        if q.positive:
            out.positives += 1
            if not answered:
                out.pos_refused += 1
            elif top in q.gold:
                out.pos_correct += 1
            else:
                out.pos_wrong += 1
        else:
            out.negatives += 1
            if not answered:
                out.neg_refused += 1
            elif top in q.forbidden:
                out.neg_wrong += 1
            else:
                out.neg_other += 1
                if q.known_gold:
                    if top in q.known_gold:
                        out.neg_other_right += 1
                    else:
                        out.neg_other_wrong += 1
    return out


def choose_threshold(queries: Sequence[EvalQuery], results: dict[str, Result], attribute: str) -> Outcome:
    """The threshold with the best ``Outcome.utility`` on ``queries`` (ties: the lowest, i.e. answer more),
    searched over every observed confidence value and 0."""
    values = sorted({0.0} | {confidence(results[q.text], attribute) for q in queries})
    best = None
    for value in values:
        candidate = outcome(queries, results, attribute, value)
        if best is None or candidate.utility > best.utility + 1e-12:
            best = candidate
    return best


def hard_negative_report(dataset: Dataset, dev_results, report_results, *, dev, report) -> dict:
    """For each confidence: the table over thresholds on the reported part, the threshold chosen on the
    development part and its outcome on the reported part (plus, without a test file, a 2-fold
    cross-check grouped by FAQ so the figure is not tuned on itself)."""
    out = {}
    for name, (mode, attribute, description) in CONFIDENCES.items():
        chosen = choose_threshold(dev, dev_results[mode], attribute)
        entry = {
            "description": description,
            "rule": "maximise (right answers − wrong answers) / all questions on the development pairs",
            "chosen_threshold": round(chosen.threshold, 4),
            "chosen_on_dev": chosen.as_dict(),
            "at_chosen_threshold": outcome(report, report_results[mode], attribute, chosen.threshold).as_dict(),
            "table": [outcome(report, report_results[mode], attribute, t).as_dict() for t in PRINTED_THRESHOLDS[name]],
        }
        if dataset.test is None:
            a, b = split_by_group(dev)
            folds = []
            for tune, held in ((a, b), (b, a)):
                t = choose_threshold(tune, dev_results[mode], attribute).threshold
                folds.append(outcome(held, dev_results[mode], attribute, t))
            merged = Outcome(threshold=float("nan"))
            for fold in folds:
                for key in ("positives", "pos_correct", "pos_wrong", "pos_refused", "negatives", "neg_refused",
                            "neg_wrong", "neg_other", "neg_other_right", "neg_other_wrong"):  # fmt: skip
                    setattr(merged, key, getattr(merged, key) + getattr(fold, key))
            cross = merged.as_dict()
            cross["threshold"] = [round(f.threshold, 4) for f in folds]
            entry["two_fold_by_faq"] = cross
        out[name] = entry
    return out


def pair_faq_ranks(queries: Sequence[EvalQuery], results: dict[str, dict[str, Result]]) -> dict:
    """How hard the hard negatives are: where each mode ranks the FAQ the pair says is wrong."""
    negatives = [q for q in queries if not q.positive]
    out = {}
    for mode in EVAL_MODES:
        ranks = [first_relevant(results[mode][q.text].ranking, q.forbidden) for q in negatives]
        out[mode] = {
            "at_1": sum(1 for r in ranks if r == 1),
            "in_top_5": sum(1 for r in ranks if r is not None and r <= 5),
            "negatives": len(negatives),
        }
    return out
