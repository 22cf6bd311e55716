"""Offline fusion variants: a re-scoring of the per-mode candidate lists, for diagnosis only (the
product's fusion is ``kb_search``'s)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection

from knowledge import services
from knowledge.evaluation.metrics import first_relevant, rank_metrics, reciprocal_rank
from knowledge.evaluation.retrieval import Result
from knowledge.selectors import ANY_WORD_TSQUERY, RRF_K, VECTOR_WEIGHT, _clean
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
    weight_vector: float = VECTOR_WEIGHT,
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
        f"RRF k={RRF_K}, vector ×{VECTOR_WEIGHT:g} (product)": (fts, {}),
        "RRF k=60, equal weights": (fts, {"rrf_k": 60, "weight_vector": 1.0}),
        "RRF k=60, fused per article": (fts, {"rrf_k": 60, "weight_vector": 1.0, "level": "article"}),
        "RRF k=60, top 20 per method": (fts, {"rrf_k": 60, "weight_vector": 1.0, "depth": 20}),
        "RRF k=60, vector ×2": (fts, {"rrf_k": 60, "weight_vector": 2.0}),
        "RRF k=60, vector ×3": (fts, {"rrf_k": 60, "weight_vector": 3.0}),
        "RRF k=10, vector ×3": (fts, {"rrf_k": 10, "weight_vector": 3.0}),
        "RRF k=60, FTS ts_rank_cd norm 1": (fts1, {"rrf_k": 60, "weight_vector": 1.0}),
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


# The grid cross-validated by ``fusion_cross_validation``: RRF k × weight of the vector list (full text ×1).
CV_RRF_K = (5, 10, 20, 30, 60)
CV_VECTOR_WEIGHTS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0)
CV_FOLDS = 5
CV_REFERENCES = {"equal RRF k=60": (60, 1.0), "shipped before (k=10, vector ×3)": (10, 3.0)}


def _fold(q, folds: int) -> int:
    key = q.group or "|".join(sorted(q.gold))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % folds


def fusion_cross_validation(dev, results, *, folds: int = CV_FOLDS) -> dict:
    """Grouped k-fold cross-validation of the fusion weights on the development part: folds by the
    question's FAQ / gold thread (a stable hash, so paraphrases of one FAQ never straddle train and
    test); on each fold the (k, vector weight) with the best MRR@10 on the other folds is chosen (ties:
    the smaller weight, then the larger k — the setting closer to equal-weight RRF) and scored on the
    held-out fold. The out-of-fold ranks of the chosen settings are compared, paired, with vector alone,
    equal-weight RRF and the previous weights. Candidate lists are ``kb_search``'s own, re-fused offline."""
    positives = [q for q in dev if q.positive]
    vector, fts = results["vector"], results["fts"]
    grid = [(k, w) for k in CV_RRF_K for w in CV_VECTOR_WEIGHTS]
    ranks = {
        setting: [
            first_relevant(fuse(vector[q.text], fts[q.text], rrf_k=setting[0], weight_vector=setting[1]), q.gold)
            for q in positives
        ]
        for setting in grid + list(CV_REFERENCES.values())
    }
    vector_ranks = [first_relevant(vector[q.text].ranking, q.gold) for q in positives]
    fold_of = [_fold(q, folds) for q in positives]
    out_of_fold: list[int | None] = [None] * len(positives)
    per_fold = []
    for f in range(folds):
        train = [i for i, g in enumerate(fold_of) if g != f]
        test = [i for i, g in enumerate(fold_of) if g == f]
        if not train or not test:
            continue
        chosen = max(grid, key=lambda s: (round(rank_metrics([ranks[s][i] for i in train])["mrr@10"], 6), -s[1], s[0]))
        for i in test:
            out_of_fold[i] = ranks[chosen][i]
        row = {"fold": f, "questions": len(test), "chosen_k": chosen[0], "chosen_vector_weight": chosen[1]}
        compared = {"chosen": ranks[chosen], "vector": vector_ranks} | {n: ranks[s] for n, s in CV_REFERENCES.items()}
        for name, r in compared.items():
            m = rank_metrics([r[i] for i in test])
            row[name] = {"recall@1": rounded(m["recall@1"]), "mrr@10": rounded(m["mrr@10"])}
        per_fold.append(row)
    oof = rank_metrics(out_of_fold)
    summary = {"folds": per_fold, "out_of_fold": {key: rounded(v) for key, v in oof.items()}}
    others = {"vector": vector_ranks} | {name: ranks[s] for name, s in CV_REFERENCES.items()}
    for name, other in others.items():
        for metric, term in (("recall@1", lambda r: float(r == 1)), ("mrr@10", reciprocal_rank)):
            diff = paired_bootstrap([term(r) for r in out_of_fold], [term(r) for r in other])
            summary[f"{metric}_vs_{name}"] = [rounded(x) for x in diff]
    summary["grid_fold_diff_vs_vector"] = {  # per setting: per fold [recall@1, MRR@10] − vector alone's
        f"k={k} w={w:g}": [
            [rounded(a - b) for a, b in zip(_r1_mrr(ranks[(k, w)], idx), _r1_mrr(vector_ranks, idx), strict=True)]
            for idx in ([i for i, g in enumerate(fold_of) if g == f] for f in range(folds))
        ]
        for k, w in grid
    }
    summary["grid_overturned_ranks"] = {f"k={k} w={w:g}": overturned_ranks(k, w) for k, w in grid}
    summary["grid_whole_dev_mrr@10"] = {
        f"k={k} w={w:g}": rounded(rank_metrics(ranks[(k, w)])["mrr@10"]) for k, w in grid
    }
    summary["grid_whole_dev_recall@1"] = {
        f"k={k} w={w:g}": rounded(rank_metrics(ranks[(k, w)])["recall@1"]) for k, w in grid
    }
    return summary


def overturned_ranks(rrf_k: int, weight_vector: float, depth: int = 50) -> int:
    """How many vector ranks one full-text vote can overturn: r − 1 for the deepest vector rank r that
    the full text's first hit lifts above the vectors' first hit found by vectors alone (0: full text
    only breaks ties; ``depth`` − 1: any candidate can be lifted to the top)."""
    top_alone = weight_vector / (rrf_k + 1)
    r = 1
    while r < depth and weight_vector / (rrf_k + r + 1) + 1 / (rrf_k + 1) > top_alone:
        r += 1
    return r - 1


def _r1_mrr(ranks, idx) -> tuple[float, float]:
    m = rank_metrics([ranks[i] for i in idx])
    return m["recall@1"], m["mrr@10"]
