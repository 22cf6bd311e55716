"""Offline fusion variants: a re-scoring of the per-mode candidate lists, for diagnosis only (the
product's fusion is ``kb_search``'s)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from knowledge import services
from knowledge.evaluation.metrics import first_relevant, rank_metrics, reciprocal_rank
from knowledge.evaluation.retrieval import Result
from knowledge.selectors import ANY_WORD_TSQUERY, RRF_K, _clean
from supportflow.evaluation import paired_bootstrap, rounded


def fts_alternative(
    texts: Iterable[str],
    *,
    namespace: str,
    pk_to_external: dict[int, str],
    normalization: int = 1,
    limit: int = 50,
    language: str = "en",
) -> dict[str, Result]:
    """kb_search's full-text candidates (same any-word tsquery, same scope) ranked by
    ``ts_rank_cd(..., normalization)`` instead of the raw cover density (1 = divide by 1 + log(length))."""
    config = services.fts_config(language)
    out = {}
    for text in dict.fromkeys(texts):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id, c.article_id FROM knowledge_chunk c, {ANY_WORD_TSQUERY} q "  # noqa: S608 — fixed clauses
                "WHERE c.namespace = %s AND c.search_vector @@ q "
                "ORDER BY ts_rank_cd(c.search_vector, q, %s) DESC, c.id LIMIT %s",
                [config, config, _clean(text), namespace, normalization, limit],
            )
            rows = cursor.fetchall()
        chunks = [(chunk_id, pk_to_external[article_id], None) for chunk_id, article_id in rows]
        out[text] = Result(ranking=list(dict.fromkeys(a for _, a, _ in chunks)), seconds=0.0, chunks=chunks)
    return out


def fuse(
    vector: Result,
    fts: Result,
    *,
    rrf_k: int = RRF_K,
    weight_vector: float = 1.0,
    level: str = "chunk",
    depth: int = 50,
) -> list[str]:
    """Re-fuse the per-mode candidate lists. level="chunk" is what kb_search does (RRF over chunk
    ranks, then best chunk per article); level="article" fuses each mode's article ranking instead."""
    scores: dict = {}
    order: dict = {}
    if level == "chunk":
        lists = [
            (weight_vector, [c for c, _, _ in vector.chunks[:depth]]),
            (1.0, [c for c, _, _ in fts.chunks[:depth]]),
        ]
        article_of = {c: a for c, a, _ in vector.chunks + fts.chunks}
    else:
        lists = [(weight_vector, vector.ranking), (1.0, fts.ranking)]
        article_of = None
    for weight, items in lists:
        for rank, item in enumerate(items, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
            order.setdefault(item, item if isinstance(item, int) else 0)
    ranked = sorted(scores, key=lambda item: (-scores[item], order[item]))
    if article_of is None:
        return ranked
    return list(dict.fromkeys(article_of[c] for c in ranked))


def variants_report(dev, results) -> dict:
    positives = [q for q in dev if q.positive]
    vector, fts, hybrid, fts1 = results["vector"], results["fts"], results["hybrid"], results["fts_norm1"]
    reproduced = sum(
        fuse(vector[q.text], fts[q.text])[: len(hybrid[q.text].ranking)] == hybrid[q.text].ranking for q in positives
    )  # the offline fusion must equal kb_search's hybrid before its variants mean anything
    variants = {  # name: (fts candidates, fuse options)
        "RRF k=60, equal weights (product)": (fts, {}),
        "RRF k=60, fused per article": (fts, {"level": "article"}),
        "RRF k=60, top 20 per method": (fts, {"depth": 20}),
        "RRF k=60, vector ×2": (fts, {"weight_vector": 2.0}),
        "RRF k=60, vector ×3": (fts, {"weight_vector": 3.0}),
        "RRF k=10, vector ×3": (fts, {"rrf_k": 10, "weight_vector": 3.0}),
        "RRF k=60, FTS ts_rank_cd norm 1": (fts1, {}),
        "RRF k=10, vector ×3, FTS norm 1": (fts1, {"rrf_k": 10, "weight_vector": 3.0}),
        "RRF k=15, vector ×4, FTS norm 1": (fts1, {"rrf_k": 15, "weight_vector": 4.0}),
        "FTS alone, ts_rank_cd norm 1": (fts1, None),
    }
    out = {"reproduces_product_hybrid": f"{reproduced}/{len(positives)}"}
    per_query = {  # 1/r per question (MRR@10 terms) and r == 1, for paired intervals
        "vector": [first_relevant(vector[q.text].ranking, q.gold) for q in positives],
        "product": [first_relevant(hybrid[q.text].ranking, q.gold) for q in positives],
    }
    for name, (fts_results, kwargs) in variants.items():
        ranks = [
            first_relevant(
                fts_results[q.text].ranking if kwargs is None else fuse(vector[q.text], fts_results[q.text], **kwargs),
                q.gold,
            )
            for q in positives
        ]
        out[name] = {key: rounded(v) for key, v in rank_metrics(ranks).items()}
        for other, other_ranks in per_query.items():
            for metric, term in (("recall@1", lambda r: float(r == 1)), ("mrr@10", reciprocal_rank)):
                diff = paired_bootstrap([term(r) for r in ranks], [term(r) for r in other_ranks])
                out[name][f"{metric}_vs_{other}"] = [rounded(x) for x in diff]  # [mean diff, CI low, CI high]
    return out
