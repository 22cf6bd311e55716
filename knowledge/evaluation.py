"""Knowledge-base retrieval evaluation: load a public FAQ dataset into its own namespace, run every
question through ``kb_search`` in each mode, and score the article rankings.

Used by ``manage.py kb_eval`` (see docs/evaluation.md). Nothing here changes how search works: the
searches are the product's own ``kb_search`` + ``best_per_article`` calls, on a namespace that is never
public. The fusion *variants* at the end are an offline re-scoring of the per-mode candidate lists,
for diagnosis only.

Datasets (detected by their files, read in place, never copied into the project):

- **stackfaq**: ``kb.json`` (help threads: id, question, answers) and ``queries.json`` (query,
  gold_id); optional held-out ``queries_test.json``.
- **covid_faq_deepset**: ``faq_covidbert.csv`` (FAQ: question, answer, link) and
  ``question_pairs.csv`` (question_1 = an FAQ question, question_2 = a user question, similar 0/1);
  optional held-out ``question_pairs_test.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection, transaction

from knowledge import embeddings, services
from knowledge.models import DEFAULT_NAMESPACE, Article, Chunk
from knowledge.selectors import ANY_WORD_TSQUERY, MODES, RRF_K, _clean, best_per_article, kb_search
from supportflow.evaluation import DatasetError, paired_bootstrap, percentile, rounded, tenths

CUTOFFS = (1, 5, 10)
EVAL_MODES = ("fts", "vector", "hybrid")  # print order: the two single methods, then their fusion


@dataclass
class EvalArticle:
    external_id: str
    title: str
    body: str
    link: str = ""


@dataclass
class EvalQuery:
    """One user question. ``gold``: external ids of the articles that answer it (duplicates of one FAQ
    count as the same answer). ``forbidden``: articles a hard-negative pair says do NOT answer it."""

    text: str
    gold: frozenset[str] = frozenset()
    forbidden: frozenset[str] = frozenset()
    group: str = ""  # the FAQ the pair is about (for grouped splits)
    known_gold: frozenset[str] = frozenset()  # hard negative whose text is also a positive pair's question

    @property
    def positive(self) -> bool:
        return bool(self.gold)


@dataclass
class Dataset:
    name: str
    path: Path
    articles: list[EvalArticle]
    dev: list[EvalQuery]
    test: list[EvalQuery] | None
    dev_file: str
    test_file: str
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> list[EvalQuery]:
        """The queries the figures are reported on: the test file when present, else development."""
        return self.test if self.test is not None else self.dev

    @property
    def reported_on(self) -> str:
        if self.test is not None:
            return f"{self.test_file} (held-out test part)"
        return f"{self.dev_file} (development part: no {self.test_file} in the folder)"


# --- loading datasets ---------------------------------------------------------------------------


def _stackfaq_threads(raw) -> list[dict]:
    """Threads as [{id, question, answers: [str]}]; also accepts the upstream {"root": {"qapair": [...]}}."""
    if isinstance(raw, dict):
        raw = [
            {"id": i, "question": t.get("question", ""), "answers": t.get("answer", [])}
            for i, t in enumerate(raw.get("root", {}).get("qapair", []))
        ]
    threads = []
    for thread in raw:
        answers = thread.get("answers") or []
        if isinstance(answers, str):  # a thread with one answer is stored as a bare string
            answers = [answers]
        threads.append({"id": thread["id"], "question": thread["question"], "answers": answers})
    return threads


def _clean_text(text: str) -> str:
    return " ".join((text or "").split())


def stackfaq_body(question: str, answers: Iterable[str]) -> str:
    """The thread as one markdown article: the question, then each answer as its own paragraph."""
    parts = [_clean_text(question)] + [_clean_text(a) for a in answers if _clean_text(a)]
    return "\n\n".join(parts)


def _stackfaq_queries(path: Path, known: set[str]) -> list[EvalQuery]:
    out = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        text, gold = _clean_text(row.get("query", "")), str(row.get("gold_id", ""))
        if not text or text == "*" or gold not in known:
            continue
        out.append(EvalQuery(text=text, gold=frozenset([gold]), group=gold))
    return out


def load_stackfaq(path: Path) -> Dataset:
    threads = _stackfaq_threads(json.loads((path / "kb.json").read_text(encoding="utf-8")))
    articles = [
        EvalArticle(
            external_id=str(t["id"]), title=_clean_text(t["question"]), body=stackfaq_body(t["question"], t["answers"])
        )
        for t in threads
    ]
    known = {a.external_id for a in articles}
    test_path = path / "queries_test.json"
    return Dataset(
        name="stackfaq",
        path=path,
        articles=articles,
        dev=_stackfaq_queries(path / "queries.json", known),
        test=_stackfaq_queries(test_path, known) if test_path.exists() else None,
        dev_file="queries.json",
        test_file="queries_test.json",
        notes=["article = one thread: title = its question; body = the question, then each answer as a paragraph"],
    )


def _covid_pairs(path: Path, by_question: dict[str, list[str]]) -> tuple[list[EvalQuery], int]:
    """Positive pairs → a query whose gold is the FAQ question_1; negative pairs → a query for which
    that FAQ is the wrong answer. Pairs whose question_1 is not an FAQ of the KB are skipped (counted)."""
    out, skipped = [], 0
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            faq, text = _clean_text(row["question_1"]), _clean_text(row["question_2"])
            ids = by_question.get(faq.lower())
            if not ids or not text:
                skipped += 1
                continue
            if str(row["similar"]).strip() == "1":
                out.append(EvalQuery(text=text, gold=frozenset(ids), group=faq))
            else:
                out.append(EvalQuery(text=text, forbidden=frozenset(ids), group=faq))
    # Most hard negatives are paraphrases written for *another* FAQ of the same file: their right answer
    # is known, so an answer with some other FAQ can be judged too.
    answers: dict[str, set[str]] = {}
    for q in out:
        answers.setdefault(q.text, set()).update(q.gold)
    for q in out:
        if not q.positive and answers.get(q.text):
            q.known_gold = frozenset(answers[q.text])
    return out, skipped


def load_covid(path: Path) -> Dataset:
    articles, by_question = [], {}
    with (path / "faq_covidbert.csv").open(encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=1):
            title, body = _clean_text(row["question"]), (row.get("answer") or "").strip()
            if not title or not body:
                continue
            external_id = f"faq-{number}"
            articles.append(
                EvalArticle(external_id=external_id, title=title, body=body, link=row.get("link", "").strip())
            )
            # FAQs repeated verbatim by the source (same question) are one answer: either one is right.
            by_question.setdefault(title.lower(), []).append(external_id)
    dev, skipped_dev = _covid_pairs(path / "question_pairs.csv", by_question)
    test_path = path / "question_pairs_test.csv"
    test, skipped_test = _covid_pairs(test_path, by_question) if test_path.exists() else (None, 0)
    notes = [
        "article = one FAQ row: title = its question, body = its answer (row number = external id)",
        "a positive pair (similar=1) is a query (question_2) whose gold is the FAQ question_1 "
        "(FAQ rows repeating the same question all count as that answer)",
    ]
    if skipped_dev or skipped_test:
        notes.append(f"pairs skipped, question_1 not an FAQ of the KB: {skipped_dev} dev, {skipped_test} test")
    return Dataset(
        name="covid_faq_deepset",
        path=path,
        articles=articles,
        dev=dev,
        test=test,
        dev_file="question_pairs.csv",
        test_file="question_pairs_test.csv",
        notes=notes,
    )


def load_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder.")
    if (path / "kb.json").exists() and (path / "queries.json").exists():
        return load_stackfaq(path)
    if (path / "faq_covidbert.csv").exists() and (path / "question_pairs.csv").exists():
        return load_covid(path)
    raise DatasetError(
        f"{path}: unknown dataset (expected kb.json + queries.json, or faq_covidbert.csv + question_pairs.csv)."
    )


def sample(queries: list[EvalQuery], limit: int | None) -> list[EvalQuery]:
    """``limit`` queries spread evenly over the file (files are grouped by FAQ, so not the first N)."""
    if not limit or limit >= len(queries):
        return queries
    return [queries[i * len(queries) // limit] for i in range(limit)]


# --- the evaluation namespace -------------------------------------------------------------------


def check_namespace(namespace: str) -> None:
    if namespace == DEFAULT_NAMESPACE or not namespace.startswith("eval-") or len(namespace) > 50:
        raise DatasetError(f"namespace {namespace!r}: evaluation namespaces start with 'eval-' (at most 50 chars).")


def wipe_namespace(namespace: str) -> int:
    check_namespace(namespace)
    deleted, _ = Article.objects.filter(namespace=namespace).delete()
    return deleted


def load_namespace(
    namespace: str, articles: Sequence[EvalArticle], *, progress: Callable[[int], None] | None = None
) -> dict[int, str]:
    """Wipe ``namespace``, save every article as published there and index it with the product's own
    ``article_reindex`` (same chunking, embedding text and hashes as production). Returns
    {article pk: external id}."""
    wipe_namespace(namespace)
    pk_to_external = {}
    for done, item in enumerate(articles, start=1):
        with transaction.atomic():
            article = services.article_save(
                title=item.title,
                body=item.body,
                status=Article.Status.PUBLISHED,
                namespace=namespace,
                external_id=item.external_id,
                source_name=item.link[:255],
                reindex="none",
            )
        services.article_reindex(article_id=article.pk)
        pk_to_external[article.pk] = item.external_id
        if progress is not None:
            progress(done)
    return pk_to_external


def namespace_chunks(namespace: str) -> int:
    return Chunk.objects.filter(namespace=namespace).count()


# --- searching ------------------------------------------------------------------------------------


@dataclass
class Result:
    """One query in one mode: the article ranking (external ids) and what the top hit looked like."""

    ranking: list[str]
    seconds: float
    top_score: float | None = None
    top_similarity: float | None = None  # cosine of the top article's best chunk (None: found by FTS only)
    chunks: list[tuple[int, str, float | None]] = field(default_factory=list)  # (chunk id, article, similarity)


def search(text: str, *, mode: str, namespace: str, pk_to_external: dict[int, str], k: int, candidates: int) -> Result:
    started = time.perf_counter()
    hits = kb_search(text, k=k, namespace=namespace, public_only=False, mode=mode, candidates=candidates)
    seconds = time.perf_counter() - started
    articles = best_per_article(hits)
    top = articles[0] if articles else None
    return Result(
        ranking=[pk_to_external[h.article_id] for h in articles],
        seconds=seconds,
        top_score=top.score if top else None,
        top_similarity=top.vector_similarity if top else None,
        chunks=[(h.chunk_id, pk_to_external[h.article_id], h.vector_similarity) for h in hits],
    )


def warm_up(namespace: str) -> None:
    """Load the model and touch every code path once, so the first timed query pays no start-up."""
    embeddings.embed_query("warm up")
    for mode in MODES:
        kb_search("how do I reset my password", k=5, namespace=namespace, public_only=False, mode=mode)


def run_queries(
    texts: Sequence[str],
    *,
    namespace: str,
    pk_to_external: dict[int, str],
    k: int = 50,
    candidates: int = 50,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Result]]:
    """{mode: {query text: Result}}; each distinct text is searched once per mode, modes interleaved.
    ``out["embed"]`` holds the time of embedding each text alone (to read the vector latencies)."""
    out: dict[str, dict[str, Result]] = {mode: {} for mode in (*EVAL_MODES, "embed")}
    for done, text in enumerate(dict.fromkeys(texts), start=1):
        started = time.perf_counter()
        embeddings.embed_query(text)
        out["embed"][text] = Result(ranking=[], seconds=time.perf_counter() - started)
        for mode in EVAL_MODES:
            out[mode][text] = search(
                text, mode=mode, namespace=namespace, pk_to_external=pk_to_external, k=k, candidates=candidates
            )
        if progress is not None:
            progress(done)
    return out


# --- metrics ----------------------------------------------------------------------------------------


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


# --- answer or refuse: a confidence threshold on the top hit ---------------------------------------

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


def split_by_group(queries: Sequence[EvalQuery]) -> tuple[list[EvalQuery], list[EvalQuery]]:
    """Two halves by a stable hash of the question's group (its FAQ / gold thread; without a group, its
    gold and forbidden articles): no FAQ is in both."""
    halves: tuple[list[EvalQuery], list[EvalQuery]] = ([], [])
    for q in queries:
        key = q.group or "|".join(sorted(q.gold | q.forbidden))
        halves[hashlib.sha256(key.encode()).digest()[0] % 2].append(q)
    return halves


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


# --- offline fusion variants (diagnosis only; the product's fusion is kb_search's) ---------------


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


# --- the kb_eval run and its report -------------------------------------------------------------------

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
RECALL5_TARGET = 0.90


def run(
    data: str | Path,
    *,
    limit: int | None = None,
    keep: bool = False,
    namespace: str | None = None,
    k: int = 50,
    candidates: int = 50,
    variants: bool = False,
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
        needs_dev = test is None or variants or dataset.name == "covid_faq_deepset"
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
    w("")
    return lines


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
