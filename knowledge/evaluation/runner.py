"""The ``kb_eval`` run: load the dataset into its namespace, search every question in each mode and
gather every figure into one summary."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from knowledge.evaluation.datasets import Dataset, load_dataset, sample
from knowledge.evaluation.fusion import fts_alternative, fusion_cross_validation, variants_report
from knowledge.evaluation.metrics import METRICS, RECALL5_TARGET, mode_metrics, per_query
from knowledge.evaluation.namespace import check_namespace, load_namespace, namespace_chunks, wipe_namespace
from knowledge.evaluation.refusal import hard_negative_report, pair_faq_ranks
from knowledge.evaluation.retrieval import EVAL_MODES, run_queries, warm_up
from supportflow.evaluation import DatasetError, paired_bootstrap, percentile, rounded, tenths


def run(
    data: str | Path,
    *,
    limit: int | None = None,
    keep: bool = False,
    namespace: str | None = None,
    k: int = 50,
    candidates: int = 50,
    variants: bool = False,
    cv: bool = False,
    log: Callable[[str], None],
    verbose: bool = True,
) -> dict:
    """Load the dataset in ``data`` into its evaluation namespace, search every question in each mode and
    return every figure (``report_lines`` prints them). ``log`` gets what is being done, and progress
    counts if ``verbose``. Raises ``DatasetError``."""
    dataset = load_dataset(data)
    namespace = namespace or f"eval-{dataset.name}"
    check_namespace(namespace)
    counts = log if verbose else None
    dev = sample(dataset.dev, limit)
    test = sample(dataset.test, limit) if dataset.test is not None else None
    report = test if test is not None else dev
    if not [q for q in report if q.positive]:
        raise DatasetError("No usable queries in the dataset.")

    started = time.perf_counter()
    load_start = os.getloadavg()
    log(f"Loading {len(dataset.articles)} articles into namespace {namespace!r}…")
    try:
        pk_to_external = load_namespace(
            namespace, dataset.articles, progress=tenths(counts, "indexed", len(dataset.articles))
        )
        chunks = namespace_chunks(namespace)
        index_seconds = time.perf_counter() - started
        warm_up(namespace)
        # Development questions are searched when something is chosen or diagnosed on them.
        needs_dev = test is None or variants or cv or dataset.name == "covid_faq_deepset"
        texts = [q.text for q in report] + ([q.text for q in dev] if needs_dev else [])
        distinct = len(dict.fromkeys(texts))
        log(f"Searching {distinct} distinct questions × 3 modes…")
        results = run_queries(
            texts,
            namespace=namespace,
            pk_to_external=pk_to_external,
            k=k,
            candidates=candidates,
            progress=tenths(counts, "searched", distinct),
        )
        if variants:
            results["fts_norm1"] = fts_alternative(
                [q.text for q in dev],
                namespace=namespace,
                pk_to_external=pk_to_external,
                limit=candidates,
            )
    finally:
        if not keep:
            wipe_namespace(namespace)
    summary = summarise(dataset, dev, test, report, results, limit=limit, k=k, candidates=candidates, variants=variants)
    if cv:
        summary["fusion_cv_dev"] = fusion_cross_validation(dev, results)
    summary.update(
        {
            "namespace": namespace,
            "kept": bool(keep),
            "articles": len(dataset.articles),
            "chunks": chunks,
            "index_seconds": rounded(index_seconds, 1),
            "total_seconds": rounded(time.perf_counter() - started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_1m_start": rounded(load_start[0], 2),
                "loadavg_1m_end": rounded(os.getloadavg()[0], 2),
            },
        }
    )
    return summary


def summarise(dataset: Dataset, dev, test, report, results, *, limit, k, candidates, variants) -> dict:
    modes = {mode: {key: rounded(v, 4 if "@" in key else 1) for key, v in mode_metrics(report, results[mode]).items()}
             for mode in EVAL_MODES}  # fmt: skip
    for figures in modes.values():
        figures["short_rankings"] = int(figures["short_rankings"])
    embed_ms = [results["embed"][text].seconds * 1000 for text in dict.fromkeys(q.text for q in report)]
    positives = [q for q in report if q.positive]
    single = ("fts", "vector")
    comparison = {}
    for metric in METRICS:
        best = max(single, key=lambda m: modes[m][metric])
        diff, lo, hi = paired_bootstrap(
            per_query(report, results["hybrid"], metric), per_query(report, results[best], metric)
        )
        comparison[metric] = {
            "hybrid": modes["hybrid"][metric],
            "best_single": best,
            "best_single_value": modes[best][metric],
            "met": modes["hybrid"][metric] >= modes[best][metric],
            "diff": rounded(diff),
            "diff_ci95": [rounded(lo), rounded(hi)],
        }
    targets = {
        "hybrid_at_least_best_single": {
            "met": all(c["met"] for c in comparison.values()),
            "per_metric": comparison,
        }
    }
    if dataset.name == "stackfaq":
        targets["stackfaq_hybrid_recall@5_>=_0.90"] = {
            "value": modes["hybrid"]["recall@5"],
            "met": modes["hybrid"]["recall@5"] >= RECALL5_TARGET,
        }
    summary = {
        "dataset": dataset.name,
        "data": str(dataset.path),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "reported_on": dataset.reported_on,
        "limit": limit,
        "k": k,
        "candidates": candidates,
        "queries": len(positives),
        "distinct_query_texts": len({q.text for q in positives}),
        "gold_articles": len({g for q in positives for g in q.gold}),
        "modes": modes,
        "embed_query_ms_p50": rounded(percentile(embed_ms, 50), 1),
        "embed_query_ms_p95": rounded(percentile(embed_ms, 95), 1),
        "targets": targets,
        "notes": dataset.notes,
    }
    if dataset.name == "covid_faq_deepset":
        summary["hard_negatives"] = hard_negative_report(dataset, results, results, dev=dev, report=report)
        summary["negatives"] = sum(1 for q in report if not q.positive)
        summary["negatives_pair_faq_rank"] = pair_faq_ranks(report, results)
    if variants:
        summary["variants_dev"] = variants_report(dev, results)
    return summary
