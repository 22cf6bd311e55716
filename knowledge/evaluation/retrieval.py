"""Every question through the product's own ``kb_search`` + ``best_per_article`` in each mode, timed:
nothing here changes how search works."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from knowledge import embeddings
from knowledge.selectors import MODES, best_per_article, kb_search

EVAL_MODES = ("fts", "vector", "hybrid")  # print order: the two single methods, then their fusion


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
