"""Reads of the knowledge base. ``kb_search`` is the one retrieval entry point for chat suggestions,
the help center, the agent console and the AI pipeline.

Hybrid retrieval: the nearest chunks by embedding (pgvector, cosine) and the best full-text matches
(any of the question's words, each quoted, so any text a person types is a valid query) are fused by
weighted reciprocal rank (vector ×10, full text ×1, k=20; see docs/evaluation.md). Customer-facing
calls search only ``is_public`` chunks: published articles of the default namespace.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from knowledge import embeddings
from knowledge.models import DEFAULT_NAMESPACE
from knowledge.services import fts_config

# Weighted reciprocal-rank fusion, vector ×10, full text ×1, k=20: one full-text vote can reorder the
# vectors' top three (lift rank 2 or 3 above rank 1) and never more. Chosen by grouped 5-fold
# cross-validation on the development parts of stackfaq and covid_faq_deepset (docs/evaluation.md): the
# more vector ranks full text may overturn, the more a fold lost at recall@1 against vector alone (k=10,
# ×3, which overturns 5, held on development but fell below vector alone on held-out data); among the
# settings that overturn at most 2, this one gained most MRR@10 over vector alone across the ten folds.
RRF_K = 20
VECTOR_WEIGHT = 10.0
FTS_WEIGHT = 1.0
MAX_QUERY_CHARS = 1000
MODES = ("hybrid", "vector", "fts")


@dataclass
class Hit:
    chunk_id: int
    article_id: int
    title: str
    slug: str
    heading_path: str
    text: str
    char_start: int
    char_end: int
    score: float
    vector_rank: int | None
    fts_rank: int | None
    vector_similarity: float | None
    snippet: SafeString
    language: str = "en"  # the article's

    @property
    def url(self) -> str:
        return f"/help/articles/{self.slug}/"


def _clean(query: str) -> str:
    if not isinstance(query, str):
        return ""
    return " ".join(query.replace("\x00", " ").split())[:MAX_QUERY_CHARS]


def _scope(namespace: str, public_only: bool) -> tuple[str, list]:
    if public_only:
        return "is_public AND namespace = %s", [namespace]
    return "namespace = %s", [namespace]


def ef_search(limit: int) -> int:
    """HNSW candidate list size for a query wanting ``limit`` neighbours. Measured by bench/kb_bench.py
    (docs/benchmarks.md): at 100k chunks, ef 100 found 0.925 of the true top 10 and ef 200 0.948;
    8 × limit (400 for kb_search's 50) keeps recall ≥ 0.95 at single-digit milliseconds. pgvector 0.6
    also filters after the scan, so a larger list leaves enough survivors of the ``WHERE``."""
    return max(100, min(1000, limit * 8))


def _vector_candidates(vector: list[float], where: str, params: list, limit: int) -> list[tuple[int, float]]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef_search(limit)])
        cursor.execute(
            f"SELECT id, 1 - (embedding <=> %s::vector) FROM knowledge_chunk "  # noqa: S608 — fixed clauses
            f"WHERE {where} AND embedding IS NOT NULL ORDER BY embedding <=> %s::vector LIMIT %s",
            [str(vector), *params, str(vector), limit],
        )
        return cursor.fetchall()


def chunk_vector_candidates(
    *, vector: list[float], namespace: str = DEFAULT_NAMESPACE, public_only: bool = True, limit: int = 50
) -> list[tuple[int, float]]:
    """``(chunk id, cosine similarity)`` of the nearest chunks by the HNSW index — exactly the vector
    half of ``kb_search`` (its scope, ``ef_search`` and query), for measuring it on its own."""
    where, params = _scope(namespace, public_only)
    return _vector_candidates(vector, where, params, limit)


# Any of the question's words (normalised by the language's dictionary, each quoted so no input is
# query syntax), ranked by cover density: a question is not a boolean AND of all its words.
ANY_WORD_TSQUERY = (
    "to_tsquery(%s::regconfig, coalesce((SELECT string_agg(quote_literal(lexeme), ' | ') "
    "FROM unnest(to_tsvector(%s::regconfig, %s))), ''))"
)


def _fts_candidates(query: str, config: str, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, ts_rank_cd(search_vector, q, 1) FROM knowledge_chunk, {ANY_WORD_TSQUERY} q "  # noqa: S608
            f"WHERE {where} AND search_vector @@ q ORDER BY 2 DESC, id LIMIT %s",
            [config, config, query, *params, limit],
        )
        return cursor.fetchall()


def _snippets(ids: list[int], query: str, config: str) -> dict[int, str]:
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, ts_headline(%s::regconfig, c.text, {ANY_WORD_TSQUERY}, "  # noqa: S608
            "'StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=1') "
            "FROM knowledge_chunk c WHERE c.id = ANY(%s)",
            [config, config, config, query, ids],
        )
        return dict(cursor.fetchall())


MARKDOWN_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MARKDOWN_SYNTAX_RE = re.compile(r"(\*\*|__|`+|^#{1,6}\s+|^\s*[-*]\s+|^\s*\d+\.\s+)", re.MULTILINE)


def _mark(text: str) -> SafeString:
    """Plain words of a headline, escaped, with its match markers as <mark>: nothing from the text
    is ever HTML, and markdown syntax (links, emphasis, list marks) is dropped for reading."""
    plain = MARKDOWN_SYNTAX_RE.sub("", MARKDOWN_LINK_RE.sub(r"\1", text))
    plain = " ".join(plain.split())
    return mark_safe(escape(plain).replace("\x02", "<mark>").replace("\x03", "</mark>"))  # noqa: S308


def kb_search(
    query: str,
    *,
    k: int = 5,
    language: str = "en",
    namespace: str = DEFAULT_NAMESPACE,
    public_only: bool = True,
    mode: str = "hybrid",
    candidates: int = 50,
    query_vector: list[float] | None = None,
) -> list[Hit]:
    """The best ``k`` chunks for ``query``. Empty or unusable queries return ``[]``, never an error."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    query = _clean(query)
    if not query or k <= 0:
        return []
    k = min(k, 100)
    candidates = max(candidates, k)
    config = fts_config(language)
    where, params = _scope(namespace, public_only)
    vector_hits: list[tuple[int, float]] = []
    fts_hits: list[tuple[int, float]] = []
    if mode in ("hybrid", "vector"):
        vector = query_vector if query_vector is not None else embeddings.embed_query(query)
        vector_hits = _vector_candidates(vector, where, params, candidates)
    if mode in ("hybrid", "fts"):
        fts_hits = _fts_candidates(query, config, where, params, candidates)

    vector_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(vector_hits, start=1)}
    similarity = dict(vector_hits)
    fts_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(fts_hits, start=1)}
    scores: dict[int, float] = {}
    for ranks, weight in ((vector_rank, VECTOR_WEIGHT), (fts_rank, FTS_WEIGHT)):
        for chunk_id, rank in ranks.items():
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    if not best:
        return []

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.article_id, a.title, a.slug, c.heading_path, c.text, c.char_start, c.char_end, a.language "
            "FROM knowledge_chunk c JOIN knowledge_article a ON a.id = c.article_id WHERE c.id = ANY(%s)",
            [best],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    snippets = _snippets([cid for cid in best if cid in fts_rank], query, config)
    hits = []
    for chunk_id in best:
        _, article_id, title, slug, heading_path, text, start, end, article_language = rows[chunk_id]
        snippet = snippets.get(chunk_id) or (text[:240] + ("…" if len(text) > 240 else ""))
        hits.append(
            Hit(
                chunk_id=chunk_id,
                article_id=article_id,
                title=title,
                slug=slug,
                heading_path=heading_path,
                text=text,
                char_start=start,
                char_end=end,
                score=scores[chunk_id],
                vector_rank=vector_rank.get(chunk_id),
                fts_rank=fts_rank.get(chunk_id),
                vector_similarity=similarity.get(chunk_id),
                snippet=_mark(snippet),
                language=article_language,
            )
        )
    return hits


KB_VERSION_PREFIX = "ai:kb-version:"


def kb_version(*, namespace: str = DEFAULT_NAMESPACE) -> int:
    """The knowledge base's version: a number that changes whenever an article or its chunks change
    (``knowledge.services.kb_version_bump``), so caches keyed on it stop reading what an edit made stale.
    Kept in the Django cache without expiry; a lost counter restarts from the clock, never from an old value."""
    from django.core.cache import cache

    key = f"{KB_VERSION_PREFIX}{namespace}"
    version = cache.get(key)
    if version is None:
        cache.add(key, time.time_ns(), timeout=None)
        version = cache.get(key)
    return int(version or 0)


def best_per_article(hits: list[Hit]) -> list[Hit]:
    """Keep each article's best chunk, in order: what a list of suggested articles shows."""
    seen: set[int] = set()
    out = []
    for hit in hits:
        if hit.article_id not in seen:
            seen.add(hit.article_id)
            out.append(hit)
    return out


def article_get_public(*, slug: str):
    """A published article of the help center, or 404: drafts and archived articles do not exist here."""
    from django.http import Http404

    from knowledge.models import Article

    article = (
        Article.objects.select_related("category")
        .filter(namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED, slug=slug)
        .first()
    )
    if article is None:
        raise Http404("No such article.")
    return article


def help_center_index() -> list[tuple[object, list]]:
    """Published articles grouped by category, for the help center's front page (two queries)."""
    from knowledge.models import Article, Category

    articles = list(
        Article.objects.filter(namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED)
        .only("title", "slug", "category_id", "language")
        .order_by("title")
    )
    by_category: dict[int | None, list] = {}
    for article in articles:
        by_category.setdefault(article.category_id, []).append(article)
    groups = [(c, by_category[c.pk]) for c in Category.objects.filter(pk__in=by_category) if c.pk in by_category]
    if None in by_category:
        groups.append((None, by_category[None]))
    return groups


def chunk_injection_flags(*, ids: list[int]) -> dict[int, bool]:
    """``{chunk_id: flagged}`` for the passages among ``ids`` the guard has already judged."""
    from knowledge.models import Chunk

    return dict(
        Chunk.objects.filter(pk__in=ids, injection_flagged__isnull=False).values_list("pk", "injection_flagged")
    )


def chunks_unscanned(*, namespace: str | None = None, limit: int | None = 500) -> list[tuple[int, str]]:
    """``(id, text)`` of passages the guard has not judged yet, oldest first: the customer-visible ones,
    or a whole ``namespace`` (an evaluation's copy)."""
    from knowledge.models import Chunk

    scope = Chunk.objects.filter(is_public=True) if namespace is None else Chunk.objects.filter(namespace=namespace)
    return list(scope.filter(injection_flagged__isnull=True).order_by("pk").values_list("pk", "text")[:limit])


def chunk_following(*, chunk_id: int) -> dict | None:
    """The next chunk of the same article after ``chunk_id`` — its text, heading path and offsets — when
    the injection guard has judged it clean; ``None`` otherwise (last chunk, unscanned or flagged)."""
    from knowledge.models import Chunk

    current = Chunk.objects.filter(pk=chunk_id).values("article_id", "position", "namespace", "is_public").first()
    if current is None:
        return None
    return (
        Chunk.objects.filter(
            article_id=current["article_id"],
            position=current["position"] + 1,
            is_public=current["is_public"],
            injection_flagged=False,
        )
        .values("text", "heading_path", "char_start", "char_end")
        .first()
    )
