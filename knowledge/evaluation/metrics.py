"""Ranking metrics over the rank of the first relevant article (recall@k, MRR@10, nDCG@10), per mode
and per query (for paired intervals)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from knowledge.evaluation.datasets import EvalQuery
from knowledge.evaluation.retrieval import Result
from supportflow.evaluation import percentile

CUTOFFS = (1, 5, 10)
METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
RECALL5_TARGET = 0.90


def first_relevant(ranking: Sequence[str], gold: Iterable[str]) -> int | None:
    gold = set(gold)
    for rank, external_id in enumerate(ranking, start=1):
        if external_id in gold:
            return rank
    return None


def reciprocal_rank(rank: int | None, cutoff: int = 10) -> float:
    return 1 / rank if rank is not None and rank <= cutoff else 0.0


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """Each query has one answer (an FAQ repeated verbatim counts once), so with r = the rank of the
    first relevant article: recall@k = share with r ≤ k; MRR@10 = mean 1/r (0 beyond 10);
    nDCG@10 = mean 1/log2(r + 1) (0 beyond 10; the ideal DCG is 1)."""
    n = len(ranks) or 1
    out = {f"recall@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in CUTOFFS}
    out["mrr@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    out["ndcg@10"] = sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= 10) / n
    return out


def mode_metrics(queries: Sequence[EvalQuery], results: dict[str, Result]) -> dict[str, float]:
    positives = [q for q in queries if q.positive]
    ranks = [first_relevant(results[q.text].ranking, q.gold) for q in positives]
    out = rank_metrics(ranks)
    latencies = [results[text].seconds * 1000 for text in dict.fromkeys(q.text for q in queries)]
    out["latency_ms_p50"] = percentile(latencies, 50)
    out["latency_ms_p95"] = percentile(latencies, 95)
    out["short_rankings"] = sum(1 for q in positives if len(results[q.text].ranking) < 10)
    return out


def per_query(queries: Sequence[EvalQuery], results: dict[str, Result], metric: str) -> list[float]:
    values = []
    for q in (q for q in queries if q.positive):
        r = first_relevant(results[q.text].ranking, q.gold)
        if metric == "mrr@10":
            values.append(reciprocal_rank(r))
        elif metric == "ndcg@10":
            values.append(1 / math.log2(r + 1) if r is not None and r <= 10 else 0.0)
        else:
            cutoff = int(metric.split("@")[1])
            values.append(1.0 if r is not None and r <= cutoff else 0.0)
    return values
