"""Measure knowledge-base retrieval on a public FAQ dataset: recall@1/5/10, MRR@10, nDCG@10 and query
latency for full-text, vector and hybrid search, plus (COVID set) answer-or-refuse on hard negatives.

    python -m supportflow.devservices exec -- .venv/bin/python manage.py kb_eval --data ../shared/datasets/stackfaq

The dataset is loaded into its own namespace (``eval-<dataset>``, never public, wiped first and
deleted at the end unless ``--keep``). Tables go to stdout, progress to stderr, and the last line of
stdout is one JSON object with every figure. See docs/evaluation.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from knowledge import evaluation as ev
from supportflow.evaluation import paired_bootstrap, percentile, tenths
from supportflow.evaluation import rounded as _r

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
RECALL5_TARGET = 0.90


class Command(BaseCommand):
    help = "Evaluate KB retrieval (fts / vector / hybrid) on a dataset folder; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Dataset folder (stackfaq or covid_faq_deepset layout).")
        parser.add_argument("--limit", type=int, default=None, help="Use only N queries (pairs) of each part.")
        parser.add_argument("--keep", action="store_true", help="Keep the evaluation namespace after the run.")
        parser.add_argument("--namespace", default=None, help="Namespace to load into (default eval-<dataset>).")
        parser.add_argument("--k", type=int, default=50, help="Chunks per search (ranked into articles).")
        parser.add_argument("--candidates", type=int, default=50, help="Candidates per method (kb_search default).")
        parser.add_argument(
            "--variants", action="store_true", help="Also score offline fusion variants (diagnosis, development part)."
        )

    def _progress(self, label: str, total: int):
        return tenths(self.stderr.write if self.verbosity else None, label, total)

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        try:
            dataset = ev.load_dataset(options["data"])
        except ev.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        namespace = options["namespace"] or f"eval-{dataset.name}"
        try:
            ev.check_namespace(namespace)
        except ev.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        limit = options["limit"]
        dev = ev.sample(dataset.dev, limit)
        test = ev.sample(dataset.test, limit) if dataset.test is not None else None
        report = test if test is not None else dev
        if not [q for q in report if q.positive]:
            raise CommandError("No usable queries in the dataset.")

        started = time.perf_counter()
        load_start = os.getloadavg()
        self.stderr.write(f"Loading {len(dataset.articles)} articles into namespace {namespace!r}…")
        try:
            pk_to_external = ev.load_namespace(
                namespace, dataset.articles, progress=self._progress("indexed", len(dataset.articles))
            )
            chunks = ev.namespace_chunks(namespace)
            index_seconds = time.perf_counter() - started
            ev.warm_up(namespace)
            # Development questions are searched when something is chosen or diagnosed on them.
            needs_dev = test is None or options["variants"] or dataset.name == "covid_faq_deepset"
            texts = [q.text for q in report] + ([q.text for q in dev] if needs_dev else [])
            distinct = len(dict.fromkeys(texts))
            self.stderr.write(f"Searching {distinct} distinct questions × 3 modes…")
            results = ev.run_queries(
                texts,
                namespace=namespace,
                pk_to_external=pk_to_external,
                k=options["k"],
                candidates=options["candidates"],
                progress=self._progress("searched", distinct),
            )
            if options["variants"]:
                results["fts_norm1"] = ev.fts_alternative(
                    [q.text for q in dev],
                    namespace=namespace,
                    pk_to_external=pk_to_external,
                    limit=options["candidates"],
                )
        finally:
            if not options["keep"]:
                ev.wipe_namespace(namespace)
        summary = self._summarise(dataset, dev, test, report, results, options)
        summary.update(
            {
                "namespace": namespace,
                "kept": bool(options["keep"]),
                "articles": len(dataset.articles),
                "chunks": chunks,
                "index_seconds": _r(index_seconds, 1),
                "total_seconds": _r(time.perf_counter() - started, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_1m_start": _r(load_start[0], 2),
                    "loadavg_1m_end": _r(os.getloadavg()[0], 2),
                },
            }
        )
        self._print_tables(dataset, summary)
        self.stderr.flush()
        sys.stderr.flush()
        self.stdout.write(json.dumps(summary, ensure_ascii=False))

    # --- figures ---------------------------------------------------------------------------------

    def _summarise(self, dataset, dev, test, report, results, options) -> dict:
        modes = {mode: {key: _r(v, 4 if "@" in key else 1) for key, v in ev.mode_metrics(report, results[mode]).items()}
                 for mode in ev.EVAL_MODES}  # fmt: skip
        for figures in modes.values():
            figures["short_rankings"] = int(figures["short_rankings"])
        embed_ms = [results["embed"][text].seconds * 1000 for text in dict.fromkeys(q.text for q in report)]
        positives = [q for q in report if q.positive]
        single = ("fts", "vector")
        comparison = {}
        for metric in METRICS:
            best = max(single, key=lambda m: modes[m][metric])
            diff, lo, hi = paired_bootstrap(
                ev.per_query(report, results["hybrid"], metric), ev.per_query(report, results[best], metric)
            )
            comparison[metric] = {
                "hybrid": modes["hybrid"][metric],
                "best_single": best,
                "best_single_value": modes[best][metric],
                "met": modes["hybrid"][metric] >= modes[best][metric],
                "diff": _r(diff),
                "diff_ci95": [_r(lo), _r(hi)],
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
            "limit": options["limit"],
            "k": options["k"],
            "candidates": options["candidates"],
            "queries": len(positives),
            "distinct_query_texts": len({q.text for q in positives}),
            "gold_articles": len({g for q in positives for g in q.gold}),
            "modes": modes,
            "embed_query_ms_p50": _r(percentile(embed_ms, 50), 1),
            "embed_query_ms_p95": _r(percentile(embed_ms, 95), 1),
            "targets": targets,
            "notes": dataset.notes,
        }
        if dataset.name == "covid_faq_deepset":
            summary["hard_negatives"] = ev.hard_negative_report(dataset, results, results, dev=dev, report=report)
            summary["negatives"] = sum(1 for q in report if not q.positive)
            summary["negatives_pair_faq_rank"] = ev.pair_faq_ranks(report, results)
        if options["variants"]:
            summary["variants_dev"] = self._variants(dev, results)
        return summary

    def _variants(self, dev, results) -> dict:
        positives = [q for q in dev if q.positive]
        vector, fts, hybrid, fts1 = results["vector"], results["fts"], results["hybrid"], results["fts_norm1"]
        reproduced = sum(
            ev.fuse(vector[q.text], fts[q.text])[: len(hybrid[q.text].ranking)] == hybrid[q.text].ranking
            for q in positives
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
            "vector": [ev.first_relevant(vector[q.text].ranking, q.gold) for q in positives],
            "product": [ev.first_relevant(hybrid[q.text].ranking, q.gold) for q in positives],
        }
        for name, (fts_results, kwargs) in variants.items():
            ranks = [
                ev.first_relevant(
                    fts_results[q.text].ranking
                    if kwargs is None
                    else ev.fuse(vector[q.text], fts_results[q.text], **kwargs),
                    q.gold,
                )
                for q in positives
            ]
            out[name] = {key: _r(v) for key, v in ev.rank_metrics(ranks).items()}
            for other, other_ranks in per_query.items():
                for metric, term in (("recall@1", lambda r: float(r == 1)), ("mrr@10", ev.reciprocal_rank)):
                    diff = paired_bootstrap([term(r) for r in ranks], [term(r) for r in other_ranks])
                    out[name][f"{metric}_vs_{other}"] = [_r(x) for x in diff]  # [mean diff, CI low, CI high]
        return out

    # --- printing --------------------------------------------------------------------------------

    def _print_tables(self, dataset, s) -> None:
        w = self.stdout.write
        w(f"\nKB retrieval evaluation: {dataset.name} ({s['data']}), {s['date']}")
        w(f"Reported on {s['reported_on']}: {s['queries']} queries, {s['gold_articles']} distinct gold articles;")
        w(f"KB: {s['articles']} articles, {s['chunks']} chunks in namespace {s['namespace']} "
          f"(indexed in {s['index_seconds']} s); each search: k={s['k']} chunks → best chunk per article.")  # fmt: skip
        if s["limit"]:
            w(f"LIMITED RUN: --limit {s['limit']} (figures are not comparable with a full run).")
        w("")
        w("| mode | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 | p50 ms | p95 ms |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for mode in ev.EVAL_MODES:
            m = s["modes"][mode]
            w(f"| {mode} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} | "
              f"{m['ndcg@10']:.3f} | {m['latency_ms_p50']:.1f} | {m['latency_ms_p95']:.1f} |")  # fmt: skip
        w(f"(machine: {s['machine']['cpus']} CPUs, 1-minute load average {s['machine']['loadavg_1m_start']} at start, "
          f"{s['machine']['loadavg_1m_end']} at end: latencies on a busy machine are upper bounds)")  # fmt: skip
        w(f"(latency = kb_search wall time per query; vector and hybrid include embedding the query, which "
          f"alone takes p50 {s['embed_query_ms_p50']} ms / p95 {s['embed_query_ms_p95']} ms)")  # fmt: skip
        w("")
        target = s["targets"]["hybrid_at_least_best_single"]
        w(f"Target: hybrid at least as good as the best single method: {'MET' if target['met'] else 'NOT MET'}")
        for metric, c in target["per_metric"].items():
            w(f"  {metric}: hybrid {c['hybrid']:.3f} vs {c['best_single']} {c['best_single_value']:.3f} "
              f"(diff {c['diff']:+.3f}, 95% CI {c['diff_ci95'][0]:+.3f}..{c['diff_ci95'][1]:+.3f}) "
              f"{'met' if c['met'] else 'NOT met'}")  # fmt: skip
        if "stackfaq_hybrid_recall@5_>=_0.90" in s["targets"]:
            t = s["targets"]["stackfaq_hybrid_recall@5_>=_0.90"]
            w(f"Target: hybrid recall@5 ≥ {RECALL5_TARGET:.2f}: {'MET' if t['met'] else 'NOT MET'} ({t['value']:.3f})")
        if "hard_negatives" in s:
            self._print_hard_negatives(s)
        if "variants_dev" in s:
            w("")
            w(f"Offline fusion variants on the development part (diagnosis; offline fusion reproduces the "
              f"product's hybrid ranking for {s['variants_dev']['reproduces_product_hybrid']} queries):")  # fmt: skip
            w("| variant | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 |")
            w("|---|---:|---:|---:|---:|---:|")
            for name, m in s["variants_dev"].items():
                if isinstance(m, dict):
                    w(f"| {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | "
                      f"{m['mrr@10']:.3f} | {m['ndcg@10']:.3f} |")  # fmt: skip
            w("Paired bootstrap, variant − vector alone / − product hybrid (mean, 95% CI):")
            for name, m in s["variants_dev"].items():
                if isinstance(m, dict):
                    w(f"  {name}: " + "; ".join(
                        f"{metric} vs {other} {m[f'{metric}_vs_{other}'][0]:+.3f} "
                        f"({m[f'{metric}_vs_{other}'][1]:+.3f}..{m[f'{metric}_vs_{other}'][2]:+.3f})"
                        for metric in ("recall@1", "mrr@10") for other in ("vector", "product")
                    ))  # fmt: skip
        w("")

    def _print_hard_negatives(self, s) -> None:
        w = self.stdout.write
        w("")
        w(f"Answer or refuse (positives: {s['queries']} pairs similar=1; hard negatives: {s['negatives']} "
          f"pairs similar=0, where the pair's FAQ is the wrong answer), on {s['reported_on']}:")  # fmt: skip
        ranks = ", ".join(
            f"{mode} {r['at_1']} at #1 / {r['in_top_5']} in top 5" for mode, r in s["negatives_pair_faq_rank"].items()
        )
        w(f"Where the pair's wrong FAQ ranks for the {s['negatives']} hard negatives: {ranks}.")
        for name, entry in s["hard_negatives"].items():
            w("")
            w(f"{name}: {entry['description']}")
            w(
                "| threshold | pos: right | pos: wrong | pos: refused | neg: refused | neg: pair's wrong FAQ "
                "| neg: other FAQ | other FAQ judged right / wrong / unjudged |"
            )
            w("|---:|---:|---:|---:|---:|---:|---:|---:|")
            for row in entry["table"]:
                w(self._outcome_row(row))
            w(f"Chosen on the development pairs ({entry['rule']}): threshold {entry['chosen_threshold']}")
            w(self._outcome_row(entry["at_chosen_threshold"], label="at chosen"))
            if "two_fold_by_faq" in entry:
                w(self._outcome_row(entry["two_fold_by_faq"], label="2-fold by FAQ"))

    @staticmethod
    def _outcome_row(row: dict, label: str | None = None) -> str:
        threshold = label or f"{row['threshold']}"
        if label and not isinstance(row["threshold"], list):
            threshold = f"{label} ({row['threshold']})"
        elif label:
            threshold = f"{label} ({', '.join(str(t) for t in row['threshold'])})"
        return (
            f"| {threshold} | {row['pos_answered_correct']:.1%} | {row['pos_answered_wrong']:.1%} | "
            f"{row['pos_refused']:.1%} | {row['neg_refused']:.1%} | {row['neg_answered_wrong_faq']:.1%} | "
            f"{row['neg_answered_other_faq']:.1%} | {row['neg_other_judged_right']} / "
            f"{row['neg_other_judged_wrong']} / {row['neg_other_unjudged']} |"
        )
