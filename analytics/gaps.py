"""Knowledge gaps: customer questions the AI could not answer well, grouped by meaning, and a draft
knowledge-base article from a group (definitions: docs/metrics.md, Knowledge gaps).

``refresh()`` runs in the worker (nightly beat, or the page's *Regroup now* button): it embeds the
window's unanswered questions with the knowledge base's model and clusters them (average linkage,
cosine ≥ ``SIMILARITY`` on average within a group). The groups replace the previous ones in one
transaction; a group that keeps its label keeps its draft.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import KnowledgeGap

WINDOW_DAYS = 30
MAX_QUESTIONS = 3000
SIMILARITY = 0.5
LOW_CONFIDENCE = 0.5
MIN_SIZE = 2
MAX_SHOWN = 50
MAX_EXAMPLES = 5


def unanswered(*, since: dt.datetime, limit: int = MAX_QUESTIONS) -> list[tuple[str, dt.datetime, str]]:
    """(question, when, department) for AI decisions since ``since`` on a ticket's opening message with
    no usable passage or a confidence below ``LOW_CONFIDENCE``, newest first."""
    from tickets.models import AIDraft

    drafts = (
        AIDraft.objects.filter(created_at__gte=since)
        .filter(Q(confidence__lt=LOW_CONFIDENCE) | Q(citations=[]))
        .exclude(gate__has_key="acknowledged")  # "thanks, that worked" needs no article
        .filter(in_reply_to__seq=1)  # the question that opened the ticket, not follow-ups ("still broken")
        .select_related("in_reply_to", "ticket__department")
        .order_by("-created_at")[:limit]
    )
    out = []
    for d in drafts:
        text = " ".join((d.in_reply_to.body if d.in_reply_to else "").split())[:500]
        if text:
            out.append((text, d.created_at, d.ticket.department.name if d.ticket.department else ""))
    return out


def group(vectors: np.ndarray, *, similarity: float = SIMILARITY) -> list[list[int]]:
    """Average-linkage clustering of unit vectors: two groups merge while their questions are, on
    average, at cosine ≥ ``similarity`` to each other (order-independent, unlike a greedy pass).
    Groups come back largest first, members in input order."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    distances = np.clip(pdist(np.asarray(vectors, dtype=np.float64), metric="cosine"), 0.0, 2.0)
    labels = fcluster(linkage(distances, method="average"), t=1.0 - similarity, criterion="distance")
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def refresh(*, window_days: int = WINDOW_DAYS) -> int:
    """Recompute the groups of the last ``window_days`` days. Returns how many groups were stored."""
    from knowledge.embeddings import embed

    now = timezone.now()
    questions = unanswered(since=now - dt.timedelta(days=window_days))
    vectors = embed([q for q, _, _ in questions]) if questions else np.zeros((0, 384), dtype=np.float32)
    rows = []
    for members in group(vectors):
        if len(members) < MIN_SIZE:
            continue
        block = vectors[members]
        central = members[int(np.argmax((block @ block.T).mean(axis=1)))]
        texts = list(dict.fromkeys(questions[i][0] for i in members))
        when = [questions[i][1] for i in members]
        rows.append(
            KnowledgeGap(
                label=questions[central][0][:300],
                size=len(members),
                examples=texts[:MAX_EXAMPLES],
                departments=sorted({questions[i][2] for i in members if questions[i][2]}),
                first_seen=min(when),
                last_seen=max(when),
                window_start=(now - dt.timedelta(days=window_days)).date(),
                window_end=now.date(),
                computed_at=now,
            )
        )
    with transaction.atomic():
        drafted = dict(KnowledgeGap.objects.filter(article__isnull=False).values_list("label", "article_id"))
        KnowledgeGap.objects.all().delete()
        for row in rows:
            row.article_id = drafted.get(row.label)
        KnowledgeGap.objects.bulk_create(rows)
    return len(rows)


def status() -> dict:
    latest = KnowledgeGap.objects.order_by("-computed_at").values("computed_at", "window_start", "window_end").first()
    return latest or {}


def draft_article(*, gap: KnowledgeGap, user=None):
    """A draft article (not public) for an editor: the group's central question as the title and the
    customers' questions to answer. Idempotent: a group already drafted returns its article."""
    from knowledge.models import Article
    from knowledge.services import article_save

    if gap.article_id and Article.objects.filter(pk=gap.article_id).exists():
        return gap.article
    questions = "\n".join(f"- {q}" for q in gap.examples)
    body = (
        f"> Draft from a knowledge gap: {gap.size} customer questions between {gap.first_seen:%Y-%m-%d} and "
        f"{gap.last_seen:%Y-%m-%d} that the AI could not answer well. Write the answer, then publish.\n\n"
        f"## What customers asked\n\n{questions}\n\n## Answer\n\n(to be written)\n"
    )
    with transaction.atomic():
        article = article_save(title=gap.label, body=body, status=Article.Status.DRAFT, source=Article.Source.LEARNED)
        gap.article = article
        gap.save(update_fields=["article"])
    return article
