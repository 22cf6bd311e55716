"""The confidence gate, calibrated to each knowledge base and to each queue's customers.

**Knowledge base** (``kb_calibrate``, after re-indexing: the beat task ``calibrate_gate`` runs it when
the published articles changed, else it is a no-op). Every published article's title and section
headings are replayed as pseudo-questions through the AI's own retrieval and confidence
(``answer.retrieve`` + ``answer.answer_local``), twice:

1. as they are: how often the best answer is *another* article, and at what confidence — articles
   that answer each other's questions are confusable (``confused_share``);
2. with the article itself (and any article with the same title) left out: what confidence the gate
   gives a wrong article when the right one is missing or loses to a near-paraphrase — the case the
   gate exists for.

The expected wrong-answer share at a threshold ``t`` is then

    wrong(t) = share of pseudo-questions answered by another article at ≥ t
             + MISS_PRIOR × share of left-out replays still answered at ≥ t
             + TWIN_CONFUSION × share of pseudo-questions whose article has a near-duplicate title
               (a twin) and whose left-out replay is answered at ≥ t

``MISS_PRIOR`` is the assumed share of customer questions whose right article does not come first or
is not in the base; a twin's question goes to the twin half the time (``TWIN_CONFUSION``). MISS_PRIOR
is the smallest value whose threshold kept wrong answers ≤ 2 % on the tuning halves of both stackfaq
and covid_faq_deepset (docs/eval-answers.md). The threshold is the lowest ``t`` (most automation)
with ``wrong(t) ≤ WRONG_CAP`` and never below ``FLOOR`` (below 0.5 the confidence says a wrong answer
is the likelier one); 1.01 when none qualifies (nothing is sent on its own). Titles are easier
questions than customers write, which is why the left-out replays carry the weight; the figures are
stored for managers with the threshold.

**A queue's customers** (``department_feedback_calibrate``). Each "No" on an AI answer
(``Message.feedback``) is counted as a wrong answer at that answer's confidence; unrated answers count
as right (an optimistic reading: most customers do not vote). Over the last ``FEEDBACK_DAYS`` days, with
at least ``FEEDBACK_MIN_ANSWERS`` answers sent, the queue's feedback threshold is the lowest confidence
``t`` at which the "No"-voted answers at ≥ ``t`` are at most ``WRONG_CAP`` of all its answers; it is
null when the votes are already within the cap (they cannot lower a threshold: answers below it were
never sent, so nothing is known about them). A queue in automatic mode uses the higher of the two.
A manager who sets the mode to manual gets exactly the threshold they typed (``gate_threshold``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Count, Max
from django.utils import timezone

from knowledge import embeddings
from knowledge.models import DEFAULT_NAMESPACE, Article, Chunk
from tickets import services
from tickets.ai import answer as answering
from tickets.models import Department, KnowledgeCalibration, Message

logger = logging.getLogger(__name__)

WRONG_CAP = 0.02
MISS_PRIOR = 0.15
TWIN_CONFUSION = 0.5  # a question about an article with a near-duplicate goes to the twin half the time
FLOOR = 0.5
NEVER = 1.01  # above any confidence: nothing is sent on its own
TWIN_COSINE = 0.85
HEADINGS_PER_ARTICLE = 4
MAX_PSEUDO_QUESTIONS = 1500
FEEDBACK_DAYS = 90
FEEDBACK_MIN_ANSWERS = 20


@dataclass
class Probe:
    article_id: int
    text: str
    confidence: float  # the gate's confidence for the best answer, with every article searched
    wrong: bool  # that best answer is another article (not one with the same title)
    left_out: float | None  # the confidence with the article (and its same-title twins) left out
    twin: bool = False  # the article has a near-duplicate title (cosine ≥ TWIN_COSINE) in the base


def _articles(namespace: str):
    qs = Article.objects.filter(namespace=namespace)
    if namespace == DEFAULT_NAMESPACE:
        qs = qs.filter(status=Article.Status.PUBLISHED)
    return qs


def fingerprint(namespace: str) -> str:
    """Changes when an article is added, removed, edited or re-indexed, or the model or weights change."""
    agg = _articles(namespace).aggregate(n=Count("pk"), indexed=Max("indexed_at"), updated=Max("updated_at"))
    ids = hashlib.sha256(",".join(map(str, _articles(namespace).order_by("pk").values_list("pk", flat=True))).encode())
    parts = [
        embeddings.model_name(),
        repr(sorted(answering.CONFIDENCE_WEIGHTS.items())),
        str(agg["n"]),
        str(agg["indexed"]),
        str(agg["updated"]),
        ids.hexdigest(),
        f"{MISS_PRIOR}:{WRONG_CAP}:{FLOOR}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def pseudo_questions(namespace: str) -> list[tuple[int, str, str, str]]:
    """``(article id, title, language, text)``: each article's title, then up to ``HEADINGS_PER_ARTICLE``
    of its section headings (the last part of a heading path) that differ from the title."""
    articles = list(_articles(namespace).filter(indexed_at__isnull=False).values_list("pk", "title", "language"))
    headings: dict[int, list[str]] = {}
    for article_id, path in (
        Chunk.objects.filter(article_id__in=[a[0] for a in articles]).exclude(heading_path="")
        .order_by("article_id", "position").values_list("article_id", "heading_path")
    ):  # fmt: skip
        leaf = path.split(" > ")[-1].strip()
        known = headings.setdefault(article_id, [])
        if leaf and leaf not in known and len(known) < HEADINGS_PER_ARTICLE:
            known.append(leaf)
    out = []
    for pk, title, language in articles:
        out.append((pk, title, language, title))
        out += [(pk, title, language, h) for h in headings.get(pk, []) if h.lower() != title.lower()]
    if len(out) > MAX_PSEUDO_QUESTIONS:  # a deterministic, even sample keeps a big base cheap
        step = len(out) / MAX_PSEUDO_QUESTIONS
        out = [out[int(i * step)] for i in range(MAX_PSEUDO_QUESTIONS)]
    return out


def _same(title_a: str, title_b: str) -> bool:
    return " ".join(title_a.lower().split()) == " ".join(title_b.lower().split())


def probe(namespace: str, article_id: int, title: str, language: str, text: str) -> Probe | None:
    passages = answering.retrieve(text, language=language, namespace=namespace)
    if not passages:
        return None
    top = passages[0].hit
    confidence = answering.answer_local(text, passages, language=language).confidence
    wrong = top.article_id != article_id and not _same(top.title, title)
    others = [p for p in passages if p.hit.article_id != article_id and not _same(p.hit.title, title)]
    left_out = None
    if others:
        renumbered = [answering.Passage(n=i, hit=p.hit) for i, p in enumerate(others, start=1)]
        left_out = answering.answer_local(text, renumbered, language=language).confidence
    return Probe(article_id=article_id, text=text, confidence=confidence, wrong=wrong, left_out=left_out)


def expected_wrong(probes: list[Probe], threshold: float, *, miss_prior: float = MISS_PRIOR) -> float:
    n = len(probes) or 1
    confused = sum(1 for p in probes if p.wrong and p.confidence >= threshold) / n
    left = [p.left_out for p in probes if p.left_out is not None]
    missing = sum(1 for c in left if c >= threshold) / (len(left) or 1)
    twins = sum(1 for p in probes if p.twin and p.left_out is not None and p.left_out >= threshold) / n
    return confused + miss_prior * missing + TWIN_CONFUSION * twins


def choose_threshold(probes: list[Probe], *, cap: float = WRONG_CAP, miss_prior: float = MISS_PRIOR) -> float:
    """The lowest threshold ≥ ``FLOOR`` whose expected wrong share is within ``cap`` (``NEVER`` if none)."""
    candidates = sorted({FLOOR} | {p.confidence for p in probes if p.confidence > FLOOR}
                        | {p.left_out for p in probes if p.left_out is not None and p.left_out > FLOOR})  # fmt: skip
    for t in candidates:
        if expected_wrong(probes, t, miss_prior=miss_prior) <= cap:
            return t
    return NEVER


def _twins(namespace: str) -> set[int]:
    """Articles whose title has a near-duplicate in the base (same-title copies count: either answers)."""
    rows = list(_articles(namespace).values_list("pk", "title"))
    if len(rows) < 2:
        return set()
    vectors = embeddings.embed([title for _, title in rows])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    same = np.array([[_same(a, b) for _, b in rows] for _, a in rows])
    sims[same] = -1.0
    return {pk for (pk, _), best in zip(rows, sims.max(axis=1), strict=True) if best >= TWIN_COSINE}


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in (50, 90, 98)}


def measure(namespace: str) -> list[Probe]:
    """Every pseudo-question of the namespace replayed (see the module docstring)."""
    twins = _twins(namespace)
    probes = [p for q in pseudo_questions(namespace) if (p := probe(namespace, *q)) is not None]
    for p in probes:
        p.twin = p.article_id in twins
    return probes


def kb_calibrate(
    *, namespace: str = DEFAULT_NAMESPACE, force: bool = False, probes: list[Probe] | None = None
) -> KnowledgeCalibration | None:
    """Calibrate the namespace's gate unless its articles are unchanged since the last calibration
    (idempotent and cheap then: two aggregate queries). ``probes``: already measured (an evaluation
    reuses them). ``None`` when it has no indexed article."""
    fp = fingerprint(namespace)
    current = KnowledgeCalibration.objects.filter(namespace=namespace).first()
    if current is not None and current.fingerprint == fp and not force:
        return current
    started = time.monotonic()
    probes = measure(namespace) if probes is None else probes
    if not probes:
        return None
    threshold = choose_threshold(probes)
    n = len(probes) or 1
    curve = {f"{t:.2f}": round(expected_wrong(probes, t), 4) for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)}
    figures = {
        "miss_prior": MISS_PRIOR,
        "floor": FLOOR,
        "expected_wrong": round(expected_wrong(probes, threshold), 4),
        "pseudo_questions_sent": round(sum(1 for p in probes if p.confidence >= threshold) / n, 4),
        "confused_sent": round(sum(1 for p in probes if p.wrong and p.confidence >= threshold) / n, 4),
        "left_out_sent": round(
            sum(1 for p in probes if p.left_out is not None and p.left_out >= threshold)
            / (sum(1 for p in probes if p.left_out is not None) or 1),
            4,
        ),
        "confidence": _quantiles([p.confidence for p in probes]),
        "left_out_confidence": _quantiles([p.left_out for p in probes if p.left_out is not None]),
        "expected_wrong_at": curve,
        "examples_confused": [p.text[:120] for p in probes if p.wrong][:5],
        "seconds": round(time.monotonic() - started, 1),
    }
    row = services.knowledge_calibration_store(
        namespace=namespace,
        threshold=threshold,
        fingerprint=fp,
        articles=len({p.article_id for p in probes}),
        pseudo_questions=len(probes),
        confused_share=sum(1 for p in probes if p.wrong) / n,
        twin_share=len({p.article_id for p in probes if p.twin}) / (len({p.article_id for p in probes}) or 1),
        wrong_cap=WRONG_CAP,
        figures=figures,
    )
    logger.info("gate calibrated for %r: threshold %.3f (%s)", namespace, threshold, figures["expected_wrong_at"])
    return row


def feedback_threshold(rows: list[tuple[float, bool]], *, cap: float = WRONG_CAP) -> float | None:
    """``rows``: (confidence, voted "No") of the answers sent. See the module docstring."""
    n = len(rows)
    if n < FEEDBACK_MIN_ANSWERS or sum(1 for _, no in rows if no) <= cap * n:
        return None
    for t in sorted({c for c, _ in rows}):
        if sum(1 for c, no in rows if no and c >= t) <= cap * n:
            return t
    return NEVER


def department_feedback_calibrate(*, department: Department) -> float | None:
    since = timezone.now() - timedelta(days=FEEDBACK_DAYS)
    votes = list(
        Message.objects.filter(
            ticket__department=department,
            author_kind=Message.AuthorKind.AI,
            is_internal=False,
            ai_confidence__isnull=False,
            created_at__gte=since,
        ).values_list("ai_confidence", "feedback")
    )
    rows = [(float(c), fb == "no") for c, fb in votes]
    threshold = feedback_threshold(rows)
    figures = {
        "answers": len(rows),
        "rated": sum(1 for _, fb in votes if fb),
        "no_votes": sum(1 for _, no in rows if no),
        "days": FEEDBACK_DAYS,
    }
    services.department_feedback_threshold_store(department_id=department.pk, threshold=threshold, figures=figures)
    return threshold


def gate_threshold(
    department: Department | None, *, namespace: str = DEFAULT_NAMESPACE, known: dict[str, float] | None = None
) -> tuple[float, str]:
    """The threshold the gate uses and where it comes from: ``manual`` (the manager's), ``calibrated``
    (the knowledge base's, or the votes' when higher: ``votes``) or ``default`` (not calibrated yet).
    ``known``: every namespace's calibrated threshold as already read; None reads this one's row."""
    if known is None:
        rows = KnowledgeCalibration.objects.filter(namespace=namespace)
        calibrated = rows.values_list("threshold", flat=True).first()
    else:
        calibrated = known.get(namespace)
    if department is not None:
        return department.threshold_in_use(calibrated)
    if calibrated is not None:
        return calibrated, "calibrated"
    return Department._meta.get_field("ai_confidence_threshold").default, "default"


def calibrate_all() -> dict:
    """The beat's work: the customer-facing base (when changed) and every active queue's votes."""
    row = kb_calibrate(namespace=DEFAULT_NAMESPACE)
    queues = {d.slug: department_feedback_calibrate(department=d) for d in Department.objects.filter(is_active=True)}
    return {"threshold": row.threshold if row else None, "votes": queues}
