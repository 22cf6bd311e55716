"""The tables of a ``run`` summary, as ``kb_eval`` prints them."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.evaluation.metrics import RECALL5_TARGET
from knowledge.evaluation.retrieval import EVAL_MODES


def report_lines(s: dict) -> list[str]:
    """The tables of a ``run`` summary, as the command prints them."""
    lines: list[str] = []
    w = lines.append
    w(f"\nKB retrieval evaluation: {s['dataset']} ({s['data']}), {s['date']}")
    w(f"Reported on {s['reported_on']}: {s['queries']} queries, {s['gold_articles']} distinct gold articles;")
    w(f"KB: {s['articles']} articles, {s['chunks']} chunks in namespace {s['namespace']} "
      f"(indexed in {s['index_seconds']} s); each search: k={s['k']} chunks → best chunk per article.")  # fmt: skip
    if s["limit"]:
        w(f"LIMITED RUN: --limit {s['limit']} (figures are not comparable with a full run).")
    w("")
    w("| mode | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 | p50 ms | p95 ms |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in EVAL_MODES:
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
        _hard_negative_lines(s, w)
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
    if "fusion_cv_dev" in s:
        _cv_lines(s["fusion_cv_dev"], w)
    w("")
    return lines


def _cv_lines(cv: dict, w: Callable[[str], None]) -> None:
    w("")
    w("Fusion weights by grouped 5-fold cross-validation on the development part (chosen by MRR@10 on the "
      "other folds, scored on the held-out fold; recall@1 / MRR@10):")  # fmt: skip
    names = [n for n in cv["folds"][0] if isinstance(cv["folds"][0][n], dict)] if cv["folds"] else []
    w("| fold | questions | chosen k, vector × | " + " | ".join(names) + " |")
    w("|---:|---:|---|" + "---:|" * len(names))
    for row in cv["folds"]:
        cells = " | ".join(f"{row[n]['recall@1']:.3f} / {row[n]['mrr@10']:.3f}" for n in names)
        w(f"| {row['fold']} | {row['questions']} | {row['chosen_k']}, {row['chosen_vector_weight']:g} | {cells} |")
    o = cv["out_of_fold"]
    w(f"Out of fold: recall@1 {o['recall@1']:.3f}, recall@5 {o['recall@5']:.3f}, MRR@10 {o['mrr@10']:.3f}")
    for key, (diff, lo, hi) in ((k, v) for k, v in cv.items() if k.startswith(("recall@1_vs_", "mrr@10_vs_"))):
        w(f"  {key.replace('_vs_', ' − ')}: {diff:+.3f} (95% CI {lo:+.3f}..{hi:+.3f})")


def _hard_negative_lines(s: dict, w: Callable[[str], None]) -> None:
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
            w(_outcome_row(row))
        w(f"Chosen on the development pairs ({entry['rule']}): threshold {entry['chosen_threshold']}")
        w(_outcome_row(entry["at_chosen_threshold"], label="at chosen"))
        if "two_fold_by_faq" in entry:
            w(_outcome_row(entry["two_fold_by_faq"], label="2-fold by FAQ"))


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
